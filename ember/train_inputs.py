"""What ``ember train`` reads from the dataset before it builds anything: observation keys, episodes, features.

The policy config gets its input/output shapes from the dataset's features (:func:`fill_policy_features`), its
motion vocabulary from ``meta/motions.json`` when asked for (:func:`fill_motion_vocabulary`); ``--obs_keys``,
``--episodes`` and ``--episode_filter`` pick what the windows are made of, each a one-line error naming what the
dataset has when they ask for something it lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import ConfigError


def select_obs_keys(features: dict[str, dict], wanted: tuple[str, ...]) -> list[str]:
    """``--obs_keys`` (checked against the dataset), or every ``observation.*`` feature when empty."""
    available = [k for k in features if k.startswith("observation.")]
    if not wanted:
        return available
    missing = [k for k in wanted if k not in features]
    if missing:
        raise ConfigError(f"--obs_keys names {missing}, which the dataset lacks; it has {available}.")
    return list(wanted)


def select_episodes(dataset: Any, episodes: tuple[int, ...], episode_filter: str) -> list[int] | None:
    """The episodes ``--episodes`` and ``--episode_filter`` keep (None: all of them); a filter that keeps none,
    or names a column the dataset lacks, is an error saying what the dataset has."""
    keep = list(range(dataset.num_episodes)) if not episodes else [int(e) for e in episodes]
    bad = [e for e in keep if not 0 <= e < dataset.num_episodes]
    if bad:
        raise ConfigError(
            f"--episodes names {bad[:10]}, but {dataset.root} has episodes 0..{dataset.num_episodes - 1}."
        )
    if episode_filter:
        if episode_filter not in dataset.features:
            numeric = [
                k
                for k, f in dataset.features.items()
                if f["dtype"] in ("float32", "float64", "bool", "int64")
            ]
            raise ConfigError(
                f"--episode_filter={episode_filter!r} is not a column of {dataset.root}; per-frame "
                f"columns: {numeric}. Success columns come from `ember collect` (next.success) or "
                "`ember label` (success.<labeler>)."
            )
        table = dataset.frame_table()
        ep = table.column("episode_index").to_numpy()
        values = np.asarray(table.column(episode_filter).to_numpy(zero_copy_only=False), dtype=np.float64)
        values = values.reshape(len(ep), -1).max(axis=1)
        passed = set(np.unique(ep[values > 0.5]).tolist())
        keep = [e for e in keep if e in passed]
        if not keep:
            raise ConfigError(
                f"--episode_filter={episode_filter!r} keeps no episode of {dataset.root}: the column "
                "is never above 0.5."
            )
    return None if not episodes and not episode_filter else keep


def fill_policy_features(policy_cfg: Any, features: dict[str, dict], obs_keys: list[str]) -> None:
    """Give the policy config its input/output shapes from the dataset, unless already set."""
    if not policy_cfg.input_features:
        inputs = {}
        for k in obs_keys:
            shape = list(features[k]["shape"])
            if features[k]["dtype"] in ("video", "image"):
                shape = [shape[2], shape[0], shape[1]]  # datasets store HWC, policies take CHW
            inputs[k] = {"shape": shape, "dtype": features[k]["dtype"]}
        policy_cfg.input_features = inputs
    if not policy_cfg.output_features:
        action = {"shape": list(features["action"]["shape"]), "dtype": "float32"}
        space = (features["action"].get("info") or {}).get("action_space")
        if space:  # so a deployment knows what the actions mean (joint targets or end-effector moves)
            action["action_space"] = space
        policy_cfg.output_features = {"action": action}


def fill_motion_vocabulary(policy_cfg: Any, root: Path) -> None:
    """``--policy.motion_vocabulary=dataset``: the phrases ``ember motions`` stored in ``meta/motions.json``, in
    their order (a motion index means the same in the dataset and the checkpoint)."""
    vocabulary = tuple(getattr(policy_cfg, "motion_vocabulary", ()) or ())
    if vocabulary == ("dataset",):
        from ember.data.motions import read_motion_vocabulary

        policy_cfg.motion_vocabulary = tuple(read_motion_vocabulary(root))
