"""What an arm is, as plain data: joints, limits, home pose, end-effector frame and action spaces.

Everything downstream (sims, real, policies) reads these instead of hard-coding joint names or limits, so one
description of a robot feeds MuJoCo, PyBullet and ROS 2 alike. The dataclasses are frozen and their arrays
read-only, because a spec is shared by every environment built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ember.robots.errors import RobotError

JOINT_POS = "joint_pos"
"""Absolute arm + gripper joint targets (radians / metres)."""
EE_DELTA = "ee_delta"
"""A Cartesian displacement of the end effector per control step (metres)."""
EE_POS = "ee_pos"
"""An absolute Cartesian end-effector target (metres)."""
ACTION_SPACES: tuple[str, ...] = (JOINT_POS, EE_DELTA, EE_POS)


def _frozen(values: object, dtype: type = np.float64) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class RobotSpec:
    """Names and limits of one arm; arrays are ordered like ``joint_names`` (gripper ones like ``gripper_joint_names``).

    ``eq=False`` because numpy arrays make field-wise equality ambiguous; compare ``name`` instead.
    """

    name: str
    description_path: str
    """The robot description file (URDF or MJCF) every backend loads."""
    joint_names: tuple[str, ...]
    """Arm joints, base to tip."""
    gripper_joint_names: tuple[str, ...]
    lower: np.ndarray
    """Arm joint position limits (rad), from the description file."""
    upper: np.ndarray
    velocity_limits: np.ndarray
    """Arm joint speed limits (rad/s)."""
    effort_limits: np.ndarray
    """Arm joint torque limits (N m); also the actuators' force ranges."""
    home_qpos: np.ndarray
    """A comfortable arm pose, hand pointing down, far from limits and singularities."""
    ee_site: str
    """Name of the end-effector site (between the fingertips) that IK and Cartesian actions refer to."""
    gripper_lower: np.ndarray = field(default_factory=lambda: _frozen([]))
    gripper_upper: np.ndarray = field(default_factory=lambda: _frozen([]))
    gripper_home: np.ndarray = field(default_factory=lambda: _frozen([]))

    def __post_init__(self) -> None:
        n, g = len(self.joint_names), len(self.gripper_joint_names)
        for attr, size in (
            ("lower", n),
            ("upper", n),
            ("velocity_limits", n),
            ("effort_limits", n),
            ("home_qpos", n),
            ("gripper_lower", g),
            ("gripper_upper", g),
            ("gripper_home", g),
        ):
            value = _frozen(getattr(self, attr))
            if value.shape != (size,):
                raise RobotError(f"robot '{self.name}': {attr} has shape {value.shape}, expected ({size},).")
            object.__setattr__(self, attr, value)  # frozen dataclass: store the read-only copy
        if np.any(self.lower >= self.upper):
            raise RobotError(f"robot '{self.name}': every lower joint limit must be below its upper limit.")

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of ``observation.state`` entries: arm joints then gripper joints (LeRobot feature names)."""
        return self.joint_names + self.gripper_joint_names

    @property
    def dof(self) -> int:
        """Number of arm joints (gripper excluded)."""
        return len(self.joint_names)

    @property
    def gripper_open(self) -> np.ndarray:
        """Gripper joint positions of the fully open gripper (the home pose opens it)."""
        return self.gripper_home

    @property
    def gripper_closed(self) -> np.ndarray:
        """Gripper joint positions of the fully closed gripper: the limit farther from the open pose.

        Panda fingers close toward their lower limit (0 m), the Robotiq 2F-85 driver toward its upper one (0.8 rad);
        callers interpolate between :attr:`gripper_open` and this instead of assuming a direction.
        """
        far_lower = np.abs(self.gripper_home - self.gripper_lower) >= np.abs(
            self.gripper_home - self.gripper_upper
        )
        return np.where(far_lower, self.gripper_lower, self.gripper_upper)


@dataclass(frozen=True, eq=False)
class ActionSpaceSpec:
    """A named, bounded float32 action vector: what a policy outputs and a dataset's ``action`` column holds."""

    name: str
    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        if self.name not in ACTION_SPACES:
            raise RobotError(f"unknown action space '{self.name}'; valid: {', '.join(ACTION_SPACES)}.")
        low, high = _frozen(self.low, np.float32), _frozen(self.high, np.float32)
        if low.shape != (len(self.names),) or high.shape != low.shape:
            raise RobotError(f"action space '{self.name}': low/high must have shape ({len(self.names)},).")
        if np.any(low > high):
            raise RobotError(f"action space '{self.name}': low must not exceed high.")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def shape(self) -> tuple[int]:
        return (len(self.names),)

    def to_gym(self):  # -> gymnasium.spaces.Box; imported lazily so robots/ does not need gymnasium
        """The matching ``gymnasium.spaces.Box`` (float32)."""
        from gymnasium import spaces

        return spaces.Box(low=np.array(self.low), high=np.array(self.high), dtype=np.float32)


def joint_pos_action_space(robot: RobotSpec) -> ActionSpaceSpec:
    """Absolute arm + gripper joint targets bounded by the joint limits."""
    return ActionSpaceSpec(
        JOINT_POS,
        robot.state_names,
        np.concatenate([robot.lower, robot.gripper_lower]),
        np.concatenate([robot.upper, robot.gripper_upper]),
    )


def ee_pos_action_space(
    low: np.ndarray, high: np.ndarray, axes: tuple[str, ...] = ("x", "y", "z")
) -> ActionSpaceSpec:
    """An absolute end-effector position inside the box ``[low, high]`` (metres, the task's frame)."""
    return ActionSpaceSpec(EE_POS, tuple(f"ee.{a}" for a in axes), np.asarray(low), np.asarray(high))


GRIPPER_ACTION = "gripper"
"""Name of the gripper entry of Cartesian actions: -1 = fully open, +1 = fully closed (robosuite/robomimic's
convention), linear in between."""


def ee_delta_action_space(
    max_delta: float, axes: tuple[str, ...] = ("x", "y", "z"), gripper: bool = False
) -> ActionSpaceSpec:
    """A per-step end-effector displacement of at most ``max_delta`` metres along each axis.

    ``gripper=True`` appends a :data:`GRIPPER_ACTION` entry in [-1, 1] (grasping tasks).
    """
    if max_delta <= 0:
        raise RobotError(f"ee_delta: max_delta must be positive, got {max_delta}.")
    n = len(axes)
    names = tuple(f"ee.d{a}" for a in axes)
    low, high = np.full(n, -max_delta), np.full(n, max_delta)
    if gripper:
        names += (GRIPPER_ACTION,)
        low, high = np.append(low, -1.0), np.append(high, 1.0)
    return ActionSpaceSpec(EE_DELTA, names, low, high)
