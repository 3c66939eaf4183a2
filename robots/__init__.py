"""What an arm is: description file, joints, limits, home pose, end-effector frame, IK and action spaces.

``robots`` knows nothing of learning or of any simulator's task; ``sims`` and ``real`` both build on it, so a
robot is described once. Heavy imports (mujoco, mink) happen only in the submodules that need them.
"""

from __future__ import annotations

from collections.abc import Callable

from robots.errors import RobotError
from robots.spec import ACTION_SPACES, ActionSpaceSpec, RobotSpec


def _panda() -> RobotSpec:
    from robots.panda import panda_spec

    return panda_spec()


_REGISTRY: dict[str, Callable[[], RobotSpec]] = {"panda": _panda}


def available_robots() -> tuple[str, ...]:
    """Names accepted by :func:`get_robot`."""
    return tuple(sorted(_REGISTRY))


def get_robot(name: str) -> RobotSpec:
    """The :class:`RobotSpec` of a registered robot (case-insensitive name)."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise RobotError(f"unknown robot '{name}'; valid robots: {', '.join(available_robots())} "
                         "(UR5e support is planned).")
    return _REGISTRY[key]()


__all__ = ["ACTION_SPACES", "ActionSpaceSpec", "RobotError", "RobotSpec", "available_robots", "get_robot"]
