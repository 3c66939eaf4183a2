"""``ember collect``: record scripted-expert demonstrations into a LeRobot v3 dataset.

Each episode is saved (durably) before the next one starts, so interrupting a long
collection keeps every finished episode. Failed expert episodes are dropped by
default: imitation learns the behaviour it sees, failures included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from ember.config import save_config
from ember.errors import RunFolderError
from ember.runs import default_out


@dataclass
class CollectConfig:
    """Which task, how many episodes, what to record and where."""

    task: str = "PushT"
    backend: str = "mujoco"
    split: str = "train"
    num_episodes: int = 100
    out: str = ""
    """Dataset root; empty = outputs/datasets/<date>_<time>_<task>."""
    seed: int = 0
    """Episode i is seeded ``seed + i`` (failed seeds are skipped, so the dataset has num_episodes successes)."""
    obs_mode: str = "state"
    """'state', or 'pixels' to also record camera videos."""
    cameras: tuple[str, ...] = ("front",)
    image_size: int = 96
    max_episode_steps: int = 0
    """0 = the task's default."""
    action_space: str = ""
    """What the actions are: ``joint_pos`` (absolute joint targets: what an arm's position controller takes),
    ``ee_delta`` or ``ee_pos`` (end-effector moves); empty = the task's default. Recorded in the dataset, and
    from there in every checkpoint trained on it."""
    observations: str = "privileged"
    """``robot``: only what a real arm gives (joint state + cameras), for policies meant for an arm;
    ``privileged``: also the simulator's object poses (``observation.environment_state``), for research."""
    keep_failures: bool = False
    max_attempts_factor: float = 1.5
    """Give up after num_episodes * factor attempts (an expert that fails that often needs fixing)."""
    overwrite: bool = False


OBSERVATION_SETS = ("privileged", "robot")
PRIVILEGED_KEYS = ("observation.environment_state",)
"""Observation keys only a simulator has (object poses); ``--observations=robot`` leaves them out."""


def dataset_features(env: gym.Env, observations: str = "privileged") -> dict[str, dict[str, Any]]:
    """LeRobot feature specs for what the environment observes and does (plus reward/done/success); the action
    feature's ``info.action_space`` names its space (``joint_pos``, ``ee_delta``, ``ee_pos``)."""
    names = getattr(env.unwrapped, "feature_names", {}) or {}
    features: dict[str, dict[str, Any]] = {}
    for key, space in env.observation_space.spaces.items():
        if key == "task" or (observations == "robot" and key in PRIVILEGED_KEYS):
            continue
        if key.startswith("observation.images."):
            features[key] = {"dtype": "video", "shape": list(space.shape), "names": ["height", "width", "channels"]}
        else:
            features[key] = {"dtype": "float32", "shape": list(space.shape), "names": names.get(key)}
    features["action"] = {"dtype": "float32", "shape": list(env.action_space.shape), "names": names.get("action")}
    space = getattr(env.unwrapped, "action_space_type", None)
    if space:
        features["action"]["info"] = {"action_space": str(space)}
    features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    features["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    return features


def _check(cfg: CollectConfig) -> None:
    """Counts and sizes that cannot make a dataset are one-line errors before anything is written."""
    from ember.errors import ConfigError

    if cfg.num_episodes < 1:
        raise ConfigError(f"--num_episodes must be a positive number of episodes, got {cfg.num_episodes}.")
    if cfg.max_attempts_factor < 1.0:
        raise ConfigError(f"--max_attempts_factor must be >= 1 (attempts per wanted episode), got "
                          f"{cfg.max_attempts_factor}.")
    if cfg.obs_mode not in ("state", "pixels"):
        raise ConfigError(f"--obs_mode must be 'state' or 'pixels', got {cfg.obs_mode!r}.")
    if cfg.obs_mode == "pixels" and (cfg.image_size < 8 or not cfg.cameras):
        raise ConfigError(f"--obs_mode=pixels needs --cameras and --image_size >= 8, got {list(cfg.cameras)} and "
                          f"{cfg.image_size}.")
    if cfg.observations not in OBSERVATION_SETS:
        raise ConfigError(f"--observations must be one of {OBSERVATION_SETS}, got {cfg.observations!r}.")
    if cfg.observations == "robot" and cfg.obs_mode != "pixels":
        raise ConfigError("--observations=robot records joints + cameras only: add --obs_mode=pixels (and "
                          "--cameras=...), or the policy sees nothing but its own joints.")
    if cfg.max_episode_steps < 0:
        raise ConfigError(f"--max_episode_steps must be >= 0 (0 = the task's default), got {cfg.max_episode_steps}.")


@dataclass
class CollectResult:
    root: Path
    episodes: int
    frames: int
    attempts: int
    expert_success_rate: float
    seconds: float


def collect(cfg: CollectConfig, *, quiet: bool = False) -> CollectResult:
    from ember.data import DatasetWriter
    from sims import make_env
    from sims.experts import make_expert

    _check(cfg)
    if not cfg.out:
        cfg.out = default_out("datasets", cfg.task.lower())
    root = Path(cfg.out)
    if root.exists() and any(root.iterdir()):
        if not cfg.overwrite:
            raise RunFolderError(f"dataset folder '{root}' already exists; pass a new --out or --overwrite=true.")
        import shutil

        shutil.move(str(root), str(root.with_name(root.name + f".old-{time.strftime('%Y%m%d-%H%M%S')}")))
    kwargs: dict[str, Any] = {"obs_mode": cfg.obs_mode, "split": cfg.split}
    if cfg.obs_mode == "pixels":
        kwargs.update(cameras=tuple(cfg.cameras), image_size=cfg.image_size)
    if cfg.max_episode_steps > 0:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    if cfg.action_space:
        kwargs["action_space_type"] = cfg.action_space
    env = make_env(cfg.task, backend=cfg.backend, render_mode=None, **kwargs)
    expert = make_expert(cfg.task, env)
    fps = int(round(env.metadata.get("render_fps", 10)))
    writer = DatasetWriter.create(root, fps=fps, features=dataset_features(env, cfg.observations),
                                  robot_type=getattr(env.unwrapped, "robot_name", None),
                                  use_videos=cfg.obs_mode == "pixels")
    max_attempts = max(cfg.num_episodes, int(np.ceil(cfg.num_episodes * cfg.max_attempts_factor)))
    saved = frames = attempts = successes = 0
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.num_episodes, desc=f"collect {cfg.task}", disable=quiet, dynamic_ncols=True)
    try:
        while saved < cfg.num_episodes and attempts < max_attempts:
            obs, info = env.reset(seed=cfg.seed + attempts)
            expert.reset()
            attempts += 1
            success, length = False, 0
            while True:
                action = np.asarray(expert.act(env), dtype=np.float32)
                next_obs, reward, terminated, truncated, info = env.step(action)
                success = success or bool(info.get("is_success", False))
                frame = {k: v for k, v in obs.items() if k != "task" and k in writer.features}
                frame.update({
                    "action": action,
                    "next.reward": np.array([reward], dtype=np.float32),
                    "next.done": np.array([terminated or truncated]),
                    "next.success": np.array([bool(info.get("is_success", False))]),
                    "task": obs["task"],
                })
                writer.add_frame(frame)
                length += 1
                obs = next_obs
                if terminated or truncated:
                    break
            successes += success
            if success or cfg.keep_failures:
                writer.save_episode()
                saved += 1
                frames += length
                bar.update(1)
            else:
                writer.clear_episode()
            bar.set_postfix(expert_success=f"{successes / attempts:.0%}")
    finally:
        bar.close()
        writer.finalize()
        env.close()
    save_config(cfg, root / "meta", "ember_collect_config.json")
    if saved < cfg.num_episodes:
        from ember.errors import EmberError

        raise EmberError(f"the {cfg.task} expert succeeded only {successes}/{attempts} times; saved {saved} "
                         f"episodes to '{root}'. Check the task settings or pass --keep_failures=true.")
    return CollectResult(root, saved, frames, attempts, successes / max(1, attempts), time.perf_counter() - t0)
