"""What an arm is: description file, joints, limits, home pose, end-effector frame, IK and action spaces.

``robots`` knows nothing of learning or of any simulator's task; ``sims`` and ``real`` both build on it, so a
robot is described once. Heavy imports (mujoco, mink) happen only in the submodules that need them.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless by default; set before mujoco is first imported

import importlib
from collections.abc import Callable
from typing import Any

from ember.robots.errors import RobotError
from ember.robots.spec import ACTION_SPACES, ActionSpaceSpec, RobotSpec

_MODULES: dict[str, tuple[str, str, str]] = {
    # name -> (module, spec factory, MjSpec factory)
    "panda": ("ember.robots.panda", "panda_spec", "panda_mjspec"),
    "ur5e": ("ember.robots.ur5e", "ur5e_spec", "ur5e_mjspec"),
}


def _factory(name: str, which: int) -> Callable[[], Any]:
    """The robot's spec factory (``which=0``) or MjSpec factory (``which=1``), imported on first use."""
    module, *funcs = _MODULES[_key(name)]
    return getattr(importlib.import_module(module), funcs[which])


def available_robots() -> tuple[str, ...]:
    """Names accepted by :func:`get_robot`."""
    return tuple(sorted(_MODULES))


def get_robot(name: str) -> RobotSpec:
    """The :class:`RobotSpec` of a registered robot (case-insensitive name)."""
    return _factory(name, 0)()


def robot_mjspec(name: str):  # -> mujoco.MjSpec; mujoco is imported only by the robot's module
    """A fresh, editable MuJoCo spec of a registered robot: actuated (one servo per ``state_names`` entry), with
    its ``ee_site`` and a ``home`` keyframe, base at the origin."""
    return _factory(name, 1)()


def _key(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _MODULES:
        raise RobotError(f"unknown robot '{name}'; valid robots: {', '.join(available_robots())}.")
    return key


__all__ = [
    "ACTION_SPACES",
    "ActionSpaceSpec",
    "RobotError",
    "RobotSpec",
    "available_robots",
    "get_robot",
    "robot_mjspec",
]
