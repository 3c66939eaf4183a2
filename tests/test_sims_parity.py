"""Backend parity: one task definition, one expert, the same episodes on MuJoCo and PyBullet."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from ember.sims import make_env  # noqa: E402
from ember.sims.experts import make_expert  # noqa: E402

SEEDS = (0, 1, 2)


def rollout(task: str, backend: str, seed: int) -> tuple[bool, str, np.ndarray]:
    env = make_env(task, backend=backend, render_mode=None)
    expert = make_expert(task, env)
    obs, info = env.reset(seed=seed)
    start = obs["observation.environment_state"].copy()
    expert.reset()
    for _ in range(env.unwrapped.max_episode_steps):
        _, _, terminated, truncated, info = env.step(expert.act(env))
        if terminated or truncated:
            break
    env.close()
    return bool(info["is_success"]), obs["task"], start


@pytest.mark.parametrize("task", ["Reach", "PickPlace"])
def test_same_expert_solves_both_backends(task):
    for seed in SEEDS:
        ok_mj, text_mj, start_mj = rollout(task, "mujoco", seed)
        ok_pb, text_pb, start_pb = rollout(task, "pybullet", seed)
        assert ok_mj and ok_pb, (task, seed, ok_mj, ok_pb)
        # Same seed, same episode: instruction and initial layout agree (up to each engine's settling).
        assert text_mj == text_pb
        np.testing.assert_allclose(start_mj, start_pb, atol=2e-3)


def test_pusht_expert_solves_both_backends():
    for backend in ("mujoco", "pybullet"):
        ok, text, _ = rollout("PushT", backend, 0)
        assert ok, backend
