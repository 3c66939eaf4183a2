"""robomimic HDF5 -> LeRobot v3 (``data/demo_i/{actions, rewards, dones, states, obs/<key>}``).

Key mapping (robomimic -> LeRobot conventions):

- ``obs/<cam>_image`` (uint8 ``N,H,W,3``) -> ``observation.images.<cam>`` (video when sizes allow);
- ``obs/<cam>_depth`` (``N,H,W[,1]``) -> ``observation.depth.<cam>`` (float32 metres);
- low-dimensional ``obs/*`` (``N,D``) except ``object`` -> concatenated ``observation.state``
  (``names`` say which slice came from which key), ``obs/object`` -> ``observation.environment_state``;
- ``actions`` -> ``action``, ``rewards`` -> ``next.reward``, ``dones`` -> ``next.done``,
  ``states`` -> ``observation.sim_state`` (float64: MuJoCo states must replay exactly).

Demos are imported in natural order (demo_2 before demo_10). With ``mask/train`` and
``mask/valid`` present, train demos come first and ``info.json["splits"]`` records both ranges.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ember.data import meta
from ember.data.errors import DatasetError
from ember.data.importers.common import ImportResult, camera_feature, require
from ember.data.writer import DatasetWriter


def _natural(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _demo_order(f: Any) -> tuple[list[str], dict[str, str]]:
    demos = sorted(f["data"].keys(), key=_natural)
    masks = {}
    if "mask" in f:
        for split in ("train", "valid"):
            if split in f["mask"]:
                masks[split] = {m.decode() if isinstance(m, bytes) else str(m) for m in f["mask"][split][()]}
    if not masks:
        return demos, {}
    order, splits, start = [], {}, 0
    for split in ("train", "valid"):
        chosen = [d for d in demos if d in masks.get(split, set()) and d not in order]
        if chosen:
            order += chosen
            splits[split] = f"{start}:{start + len(chosen)}"
            start += len(chosen)
    order += [d for d in demos if d not in order]
    return order, splits


def import_robomimic(
    source: str | Path,
    root: str | Path,
    task: str | None = None,
    fps: int | None = None,
    state_keys: Sequence[str] | None = None,
    use_videos: bool = True,
    video_codec: str | None = None,
    max_episodes: int | None = None,
) -> ImportResult:
    """Convert the robomimic file ``source`` into a new dataset at ``root``."""
    h5py = require("h5py", "h5py", "importing robomimic HDF5")
    t0 = time.perf_counter()
    source = Path(source)
    if not source.is_file():
        raise DatasetError(f"robomimic file {source} does not exist.")
    notes: list[str] = []
    with h5py.File(source, "r") as f:
        if "data" not in f or not len(f["data"]):
            raise DatasetError(f"{source} has no data/demo_* groups; it is not a robomimic dataset.")
        env_args: dict[str, Any] = {}
        if "env_args" in f["data"].attrs:
            raw = f["data"].attrs["env_args"]
            env_args = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        task = task or env_args.get("lang") or env_args.get("env_name") or "robomimic demo"
        fps = fps or int((env_args.get("env_kwargs") or {}).get("control_freq", 20))
        order, splits = _demo_order(f)
        if max_episodes is not None and max_episodes < len(order):
            order, splits = order[:max_episodes], {}
        first = f["data"][order[0]]
        obs = first["obs"] if "obs" in first else {}
        cams, depths, low = [], [], []
        for key in sorted(obs.keys()):
            ds = obs[key]
            if ds.ndim == 4 and ds.shape[-1] == 3 and ds.dtype == np.uint8:
                cams.append(key)
            elif key.endswith("_depth") and ds.ndim in (3, 4):
                depths.append(key)
            elif ds.ndim == 2 and key != "object":
                low.append(key)
        if state_keys is not None:
            unknown = [k for k in state_keys if k not in obs]
            if unknown:
                raise DatasetError(f"state_keys {unknown} are not in {source}'s obs ({sorted(obs.keys())}).")
            low = list(state_keys)
        features: dict[str, dict[str, Any]] = {}
        cam_name = {k: "observation.images." + re.sub(r"_image$", "", k) for k in cams}
        depth_name = {k: "observation.depth." + re.sub(r"_depth$", "", k) for k in depths}
        if low:
            names = [f"{k}.{i}" for k in low for i in range(obs[k].shape[1])]
            features["observation.state"] = {"dtype": "float32", "shape": [len(names)], "names": names}
        if "object" in obs:
            features["observation.environment_state"] = {
                "dtype": "float32", "shape": [obs["object"].shape[1]], "names": None}  # fmt: skip
        for k in cams:
            features[cam_name[k]] = camera_feature(obs[k].shape[1:3], use_videos)
        for k in depths:
            features[depth_name[k]] = {"dtype": "float32", "shape": list(obs[k].shape[1:3])}
        features["action"] = {"dtype": "float32", "shape": [first["actions"].shape[1]], "names": None}
        if "rewards" in first:
            features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
        if "dones" in first:
            features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
        if "states" in first:
            features["observation.sim_state"] = {
                "dtype": "float64",
                "shape": [first["states"].shape[1]],
                "names": None,
            }

        frames = 0
        with DatasetWriter.create(root, fps=fps, features=features, robot_type=env_args.get("env_name"),
                                  use_videos=use_videos, video_codec=video_codec) as writer:  # fmt: skip
            for demo in order:
                g = f["data"][demo]
                n = int(g["actions"].shape[0])
                cols: dict[str, np.ndarray] = {"action": g["actions"][()]}
                if low:
                    cols["observation.state"] = np.concatenate(
                        [np.asarray(g["obs"][k][()], dtype=np.float64).reshape(n, -1) for k in low], axis=1
                    )
                if "object" in obs:
                    cols["observation.environment_state"] = g["obs"]["object"][()]
                for k in cams:
                    cols[cam_name[k]] = g["obs"][k][()]
                for k in depths:
                    d = np.asarray(g["obs"][k][()], dtype=np.float32)
                    cols[depth_name[k]] = d.reshape(n, *d.shape[1:3])
                if "rewards" in g:
                    cols["next.reward"] = g["rewards"][()]
                if "dones" in g:
                    cols["next.done"] = np.asarray(g["dones"][()]).astype(bool)
                if "states" in g:
                    cols["observation.sim_state"] = g["states"][()]
                missing = set(features) - set(cols)
                if missing:
                    raise DatasetError(f"{source}: {demo} lacks {sorted(missing)} that {order[0]} has.")
                for t in range(n):
                    writer.add_frame({**{k: v[t] for k, v in cols.items()}, "task": task})
                writer.save_episode()
                frames += n
    if splits:
        info = meta.read_info(Path(root))
        info["splits"] = splits
        meta.write_info(Path(root), info)
        notes.append(f"splits from mask/: {splits}")
    return ImportResult(Path(root), len(order), frames, time.perf_counter() - t0, notes)
