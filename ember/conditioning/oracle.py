"""Evaluation conditioning from the scripted expert: hindsight of an expert rollout of the *same* seed.

Evaluating a sketch-conditioned policy needs a sketch per episode. A person would draw one; automated evaluation
replays the task's scripted expert on the evaluation seed in its own environment and makes the conditioning from
that rollout with exactly the code that made the training conditioning from recorded episodes
(:func:`~ember.conditioning.episodes.produce`). The policy's environment is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.conditioning.cameras import CameraModel
from ember.conditioning.episodes import EpisodeRecord, produce
from ember.conditioning.errors import ConditioningError

ENV_STATE = "observation.environment_state"


@dataclass
class ExpertConditioning:
    """The conditioning of one evaluation episode, whether the expert it came from succeeded, and the episode's
    first frame in the conditioning camera (what videos draw the conditioning on when the policy has no camera)."""

    values: dict[str, np.ndarray]
    expert_success: bool
    first_frame: np.ndarray


def expert_conditioning(
    task: str,
    backend: str,
    seed: int,
    kinds: Sequence[str],
    camera: str,
    image_size: int,
    env_kwargs: dict[str, Any] | None = None,
    num_keypoints: int | None = None,
    sketch_source: str = "rgb",
) -> ExpertConditioning:
    """The conditioning of episode ``seed`` (split and options in ``env_kwargs``) from the expert's rollout."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless, as the CLI sets it; read when mujoco is imported
    from ember.sims import make_env
    from ember.sims.experts import make_expert

    kwargs = {
        **(env_kwargs or {}),
        "obs_mode": "pixels",
        "cameras": (camera,),
        "image_size": int(image_size),
        "render_mode": None,
    }
    env = make_env(task, backend=backend, **kwargs)
    try:
        expert = make_expert(task, env)
        obs, info = env.reset(seed=seed)
        expert.reset()
        key = f"observation.images.{camera}"
        frames, states = [], []
        success = False
        while True:  # record what a dataset records: the observation each action was taken from
            frames.append(obs[key])
            states.append(obs.get(ENV_STATE))
            obs, _, terminated, truncated, info = env.step(np.asarray(expert.act(env), dtype=np.float32))
            success = success or bool(info.get("is_success", False))
            if terminated or truncated:
                break
        cameras = info.get("cameras") or {}
        model = CameraModel.from_info(cameras[camera], image_size, image_size) if camera in cameras else None
        names = list(getattr(env.unwrapped, "feature_names", {}).get(ENV_STATE, []))
    finally:
        env.close()
    env_state = np.stack(states) if states[0] is not None else None
    record = EpisodeRecord(np.stack(frames), env_state, names, model)
    try:
        values = produce(record, kinds, None, num_keypoints=num_keypoints, sketch_source=sketch_source)
        return ExpertConditioning(values, success, frames[0])
    except ConditioningError as exc:
        raise ConditioningError(f"{task} seed {seed}: {exc}") from exc


def first_frame(
    task: str, backend: str, seed: int, camera: str, image_size: int, env_kwargs: dict[str, Any] | None = None
) -> np.ndarray:
    """Episode ``seed``'s first frame in ``camera`` (uint8 HxWx3): the ``initial_image`` of a policy that does not
    render that camera itself, when the rest of its conditioning comes from a user."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from ember.sims import make_env

    kwargs = {
        **(env_kwargs or {}),
        "obs_mode": "pixels",
        "cameras": (camera,),
        "image_size": int(image_size),
        "render_mode": None,
    }
    env = make_env(task, backend=backend, **kwargs)
    try:
        obs, _ = env.reset(seed=seed)
    finally:
        env.close()
    return np.asarray(obs[f"observation.images.{camera}"], dtype=np.uint8)
