"""The Isaac Gym adapter: without Isaac Gym installed, a clear error that says what to install and where from."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from ember.sims import TASKS, SimError, make_env  # noqa: E402
from ember.sims.isaacgym import isaacgym_available  # noqa: E402


def test_reach_claims_the_isaacgym_backend():
    assert "isaacgym" in TASKS["Reach"]


@pytest.mark.skipif(isaacgym_available(), reason="Isaac Gym is installed here")
def test_missing_isaacgym_says_what_to_install():
    with pytest.raises(SimError) as err:
        make_env("Reach", backend="isaacgym")
    message = str(err.value)
    assert "Isaac Gym Preview 4" in message and "developer.nvidia.com/isaac-gym" in message
    assert "pip install -e isaacgym/python" in message and "backend='mujoco'" in message


def test_isaacgym_rejects_cameras_before_needing_the_package():
    with pytest.raises(SimError, match="no cameras yet"):
        make_env("Reach", backend="isaacgym", obs_mode="pixels")


@pytest.mark.skipif(not isaacgym_available(), reason="needs NVIDIA Isaac Gym (not on PyPI) and a GPU")
def test_check_env_on_isaacgym():  # pragma: no cover - runs only where Isaac Gym is installed
    from gymnasium.utils.env_checker import check_env

    env = make_env("Reach", backend="isaacgym", render_mode=None)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()
