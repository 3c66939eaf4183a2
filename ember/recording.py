"""What one recorded sim frame holds: the dataset features of an env and the row of each step.

``ember collect`` and ``ember eval --record`` write the same layout: the observation the action was taken from (the
keys the features declare), the action, what the step returned (``next.*``) and the simulator's ground truth after
it (:data:`SIM_FEATURES`, columns no policy reads: they are not ``observation.*``, and training selects only
those). ``--observations=robot`` leaves out what only a simulator has (:data:`PRIVILEGED_KEYS`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from ember.errors import RunFolderError

SIM_FEATURES: dict[str, dict[str, Any]] = {
    "sim.success": {"dtype": "float32", "shape": [1], "names": None},
    "sim.progress": {"dtype": "float32", "shape": [1], "names": None},
    "sim.behavior": {"dtype": "string", "shape": [1], "names": None},
    "sim.failure": {"dtype": "string", "shape": [1], "names": None},
    "sim.action_noise": {"dtype": "float32", "shape": [1], "names": None},
    "sim.seed": {"dtype": "int64", "shape": [1], "names": None},
}
"""The simulator's ground truth per frame, for measuring labelers (never observations):

* ``sim.success``: 1.0 if the task is done after the frame's action (the env's ``is_success``), else 0.0;
* ``sim.progress``: the task's ground-truth progress after the frame's action, in [0, 1], 1.0 exactly at success
  (each task's docstring defines its stages; PushT: ``min(1, coverage / success_coverage)``);
* ``sim.behavior``: what acted in this episode: ``expert``, ``noisy``, ``failing`` (``ember collect``) or
  ``policy`` (``ember eval --record``);
* ``sim.failure``: for ``failing`` episodes ``wrong_target`` or ``early_stop``, else empty;
* ``sim.action_noise``: the std of a ``noisy`` episode's action noise (fraction of the half-range), else 0;
* ``sim.seed``: the seed the episode's env was reset with (rollouts of one initial state share it: ``ember eval
  --rollouts_per_seed``, paired by ``ember label --pairs_within=seed``).
"""

OBSERVATION_SETS = ("privileged", "robot")
PRIVILEGED_KEYS = ("observation.environment_state",)
"""Observation keys only a simulator has (object poses); ``--observations=robot`` leaves them out."""


def write_camera_geometry(
    root: Path, info: dict[str, Any], cameras: tuple[str, ...], image_size: int
) -> None:
    """The fixed cameras' intrinsics/extrinsics (the env's ``info["cameras"]`` at the first episode) into
    ``meta/ember_cameras.json``: sketches and keypoints of the dataset are then drawn from the dataset alone, as for
    a real recording. The wrist camera moves with the hand, so it has no one pose to record."""
    from ember.conditioning.cameras import CameraModel, write_dataset_cameras

    reported = info.get("cameras") or {}
    models = {
        c: CameraModel.from_info(reported[c], image_size, image_size)
        for c in cameras
        if c in reported and c != "wrist"
    }
    if models:
        write_dataset_cameras(root, models)


def dataset_features(env: gym.Env, observations: str = "privileged") -> dict[str, dict[str, Any]]:
    """LeRobot feature specs for what the environment observes and does (plus reward/done/success); the action
    feature's ``info.action_space`` names its space (``joint_pos``, ``ee_delta``, ``ee_pos``)."""
    names = getattr(env.unwrapped, "feature_names", {}) or {}
    features: dict[str, dict[str, Any]] = {}
    for key, space in env.observation_space.spaces.items():
        if key == "task" or (observations == "robot" and key in PRIVILEGED_KEYS):
            continue
        if key.startswith("observation.images."):
            features[key] = {
                "dtype": "video",
                "shape": list(space.shape),
                "names": ["height", "width", "channels"],
            }
        else:
            features[key] = {"dtype": "float32", "shape": list(space.shape), "names": names.get(key)}
    features["action"] = {
        "dtype": "float32",
        "shape": list(env.action_space.shape),
        "names": names.get("action"),
    }
    space = getattr(env.unwrapped, "action_space_type", None)
    if space:
        features["action"]["info"] = {"action_space": str(space)}
    features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    features["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    features.update({k: dict(v) for k, v in SIM_FEATURES.items()})
    return features


def frame_row(
    obs: dict[str, Any],
    action: np.ndarray,
    reward: float,
    terminated: bool,
    truncated: bool,
    info: dict[str, Any],
    features: dict[str, Any],
    behavior: str = "expert",
    failure: str = "",
    action_noise: float = 0.0,
    seed: int = -1,
) -> dict[str, Any]:
    """One dataset frame: the observation the action was taken from (the keys ``features`` declares), the action,
    what the step returned (``next.*``) and the simulator's ground truth after it (:data:`SIM_FEATURES`); used by
    ``ember collect`` and ``ember eval --record`` alike."""
    success = bool(info.get("is_success", False))
    frame = {k: v for k, v in obs.items() if k != "task" and k in features}
    frame.update(
        {
            "action": np.asarray(action, dtype=np.float32),
            "next.reward": np.array([reward], dtype=np.float32),
            "next.done": np.array([terminated or truncated]),
            "next.success": np.array([success]),
            "sim.success": np.array([float(success)], dtype=np.float32),
            "sim.progress": np.array([float(info.get("progress", float(success)))], dtype=np.float32),
            "sim.behavior": behavior,
            "sim.failure": failure,
            "sim.action_noise": np.array([action_noise], dtype=np.float32),
            "sim.seed": np.array([seed], dtype=np.int64),
            "task": obs["task"],
        }
    )
    return frame


def prepare_dataset_root(root: Path, overwrite: bool) -> None:
    """A dataset folder that is new or empty; with ``overwrite`` an existing one is moved aside (never deleted)."""
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise RunFolderError(
                f"dataset folder '{root}' already exists; pass a new --out or --overwrite=true."
            )
        import shutil

        shutil.move(str(root), str(root.with_name(root.name + f".old-{time.strftime('%Y%m%d-%H%M%S')}")))
