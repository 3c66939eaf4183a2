"""3-D PushT: Gymnasium API, coverage metric, determinism, action validation and the scripted expert."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

from ember import sims  # noqa: E402
from ember.sims import SimError, make_env  # noqa: E402
from ember.sims.experts import make_expert  # noqa: E402
from ember.sims.mujoco.pusht import INSTRUCTIONS, PushTEnv  # noqa: E402
from ember.sims.tshape import TShape  # noqa: E402


@pytest.fixture(scope="module")
def env():
    e = PushTEnv(render_mode="rgb_array", render_size=64)
    yield e
    e.close()


def test_check_env_state():
    e = make_env("PushT", render_mode=None)
    check_env(e.unwrapped, skip_render_check=True)
    e.close()


def test_check_env_pixels():
    e = make_env("PushT", obs_mode="pixels", cameras=("front", "wrist"), image_size=32, render_mode=None)
    check_env(e.unwrapped, skip_render_check=True)
    obs, _ = e.reset(seed=0)
    for cam in ("front", "wrist"):
        img = obs[f"observation.images.{cam}"]
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and img.std() > 0
    e.close()


def test_observation_contract(env):
    obs, info = env.reset(seed=3)
    assert set(obs) == {"observation.state", "observation.environment_state", "task"}
    assert obs["observation.state"].shape == (9,) and obs["observation.state"].dtype == np.float32
    assert obs["observation.environment_state"].shape == (6,)
    assert obs["task"] in INSTRUCTIONS
    assert env.observation_space.contains(obs)
    x, y, bx, by, s, c = obs["observation.environment_state"]
    np.testing.assert_allclose([x, y], env.PUSHER_START, atol=2e-3)
    np.testing.assert_allclose([bx, by, math.atan2(s, c)], info["block_pose"], atol=1e-5)
    assert env.feature_names["observation.state"][0] == "panda_joint1"
    assert env.feature_names["action"] == ["ee.x", "ee.y"]
    assert set(info) >= {"coverage", "is_success", "block_pose", "goal_pose"}


def test_registered_and_made_by_gymnasium():
    assert "ember/PushT-v0" in gymnasium.registry
    e = gymnasium.make("ember/PushT-v0", render_mode=None)
    obs, _ = e.reset(seed=0)
    assert "observation.state" in obs
    e.close()


def test_unknown_task_and_backend_errors():
    with pytest.raises(SimError, match="valid tasks: PushT"):
        make_env("PushCubeX")
    with pytest.raises(SimError, match="valid backends: mujoco, pybullet"):
        make_env("PushT", backend="isaacgym")
    with pytest.raises(SimError, match="valid splits: train, heldout_goal, heldout_object, heldout_scene"):
        PushTEnv(split="test")
    with pytest.raises(SimError, match="valid: state, pixels"):
        PushTEnv(obs_mode="rgbd")
    with pytest.raises(SimError, match="unknown camera"):
        PushTEnv(obs_mode="pixels", cameras=("ceiling",))
    assert issubclass(SimError, ValueError)
    assert sims.resolve_task("ember/PushT-v0") == "PushT"


def test_tshape_coverage_exact():
    t = TShape()
    goal = (0.0, 0.0, 0.3)
    assert t.coverage(goal, goal) == pytest.approx(1.0)
    assert t.coverage((0.5, 0.0, 0.0), goal) == 0.0
    # Against a fine rasterisation of both T's.
    xs = np.linspace(-0.15, 0.15, 901)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    cell = (xs[1] - xs[0]) ** 2
    for pose in [(0.01, -0.02, 0.4), (0.03, 0.0, -1.2), (-0.02, 0.01, 3.0)]:
        raster = (t.contains(pose, grid) & t.contains(goal, grid)).sum() * cell / t.area
        assert t.coverage(pose, goal) == pytest.approx(raster, abs=0.01)


def test_coverage_one_on_goal_and_zero_far(env):
    _, info = env.reset(seed=0, options={"block_pose": env.goal_pose})
    assert info["coverage"] == pytest.approx(1.0, abs=1e-6) and info["is_success"]
    _, reward, terminated, _, info = env.step(env.PUSHER_START.astype(np.float32))
    assert info["coverage"] > 0.99 and terminated and reward == pytest.approx(1.0)
    _, info = env.reset(seed=0, options={"block_pose": (0.15, 0.2, 1.0)})
    assert info["coverage"] < 0.01 and not info["is_success"]


def test_seeded_reset_is_deterministic():
    a, b = PushTEnv(render_mode=None), PushTEnv(render_mode=None)
    oa, ia = a.reset(seed=7)
    ob, ib = b.reset(seed=7)
    assert oa["task"] == ob["task"]
    np.testing.assert_array_equal(ia["block_pose"], ib["block_pose"])
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(a.action_space.low, a.action_space.high).astype(np.float32)
        oa, ra, *_ = a.step(action)
        ob, rb, *_ = b.step(action)
        np.testing.assert_array_equal(oa["observation.state"], ob["observation.state"])
        np.testing.assert_array_equal(
            oa["observation.environment_state"], ob["observation.environment_state"]
        )
        assert ra == rb
    _, other = a.reset(seed=8)
    assert not np.allclose(other["block_pose"], ia["block_pose"])
    test = PushTEnv(render_mode=None, split="heldout_object")
    _, it = test.reset(seed=7)
    assert not np.allclose(it["block_pose"], ia["block_pose"])  # splits salt the seed


def test_invalid_actions_raise_and_out_of_bounds_clip(env):
    env.reset(seed=0)
    with pytest.raises(SimError, match="NaN"):
        env.step(np.array([np.nan, 0.0], dtype=np.float32))
    with pytest.raises(SimError, match="shape"):
        env.step(np.zeros(3, dtype=np.float32))
    env.step(np.array([10.0, -10.0], dtype=np.float32))  # clipped, and the per-step motion is bounded
    assert np.linalg.norm(env.commanded_pos - env.PUSHER_START) <= env.max_ee_step + 1e-9


def test_pusher_follows_ee_pos_targets(env):
    env.reset(seed=0)
    target = np.array([0.15, -0.2], dtype=np.float32)
    for _ in range(12):
        obs, *_ = env.step(target)
    np.testing.assert_allclose(obs["observation.environment_state"][:2], target, atol=3e-3)


def test_ee_delta_actions():
    e = PushTEnv(action_space_type="ee_delta", render_mode=None)
    e.reset(seed=0)
    assert e.action_space.shape == (2,) and float(e.action_space.high[0]) == pytest.approx(0.03)
    for _ in range(5):
        obs, *_ = e.step(np.array([0.02, 0.0], dtype=np.float32))
    e.step(np.zeros(2, dtype=np.float32))
    obs, *_ = e.step(np.zeros(2, dtype=np.float32))
    np.testing.assert_allclose(
        obs["observation.environment_state"][:2], e.PUSHER_START + [0.1, 0.0], atol=3e-3
    )


def test_render(env):
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0


def test_truncation_after_max_episode_steps():
    e = make_env("PushT", render_mode=None, max_episode_steps=3)
    e.reset(seed=0)
    flags = [e.step(e.unwrapped.PUSHER_START.astype(np.float32))[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_expert_succeeds():
    e = make_env("PushT", render_mode=None)
    expert = make_expert("PushT", e)
    successes = 0
    for seed in range(5):
        e.reset(seed=seed)
        expert.reset()
        for _ in range(e.unwrapped.max_episode_steps):
            _, _, terminated, truncated, info = e.step(expert.act(e))
            if terminated or truncated:
                break
        successes += bool(info["is_success"])
    assert successes >= 4


def test_expert_drives_ee_delta_envs_too():
    e = PushTEnv(action_space_type="ee_delta", render_mode=None)
    expert = make_expert("PushT", e)
    e.reset(seed=11)
    expert.reset()
    for _ in range(e.max_episode_steps):
        action = expert.act(e)
        assert e.action_space.contains(action)
        _, _, terminated, truncated, info = e.step(action)
        if terminated or truncated:
            break
    assert info["is_success"]
