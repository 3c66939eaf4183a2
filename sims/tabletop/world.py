"""The interface a simulator backend implements so that tabletop tasks, envs and experts run on it unchanged.

A *world* is one simulated scene (robot + table + what a task's :class:`~sims.tabletop.scene.SceneSpec` lists). The
env owns the Gymnasium contract (spaces, validation, seeding, observations); the task owns layouts and success; the
world only moves things and reports where they are. MuJoCo (``ember.sims.mujoco.world``) and PyBullet
(``ember.sims.pybullet.world``) implement it; Isaac Gym (``ember.sims.isaacgym``) adapts it for GPU-batched simulation.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ember.robots.spec import RobotSpec
from ember.sims.errors import SimError
from ember.sims.tabletop.scene import Layout, SceneSpec

GRIPPER = "gripper"
"""Name for the robot's fingers in :meth:`World.touching`."""
TABLE = "table"
URDF_ROBOTS = ("panda",)
"""Robots of the URDF backends (PyBullet, Isaac Gym); MuJoCo has every robot in ``robots/``."""


def check_urdf_world(backend: str, robot: str, scene: SceneSpec) -> None:
    """What a URDF backend cannot build: robots without a URDF, and the drawer (a MuJoCo-only asset)."""
    if robot not in URDF_ROBOTS:
        raise SimError(
            f"robot '{robot}' is not available on {backend} (it needs a URDF); valid: "
            f"{', '.join(URDF_ROBOTS)}."
        )
    if scene.drawer is not None:
        raise SimError("the Drawer task is MuJoCo-only; use backend='mujoco'.")


class World(Protocol):
    robot: RobotSpec
    control_hz: float

    def reset(self, layout: Layout, q_arm: np.ndarray) -> None:
        """Apply ``layout``, put the arm at ``q_arm`` (at rest, servos holding it) with the gripper open."""

    def ik(self, q_arm: np.ndarray, ee_pos: np.ndarray) -> np.ndarray:
        """Arm joint targets that put the end effector at ``ee_pos`` pointing down, starting from ``q_arm``."""

    def step(self, q_arm: np.ndarray, q_grip: np.ndarray) -> None:
        """Advance one control period (``1 / control_hz`` s) driving the servos toward the given joint targets."""

    def joint_positions(self) -> np.ndarray:
        """Measured arm then gripper joint positions (``robot.state_names`` order)."""

    def ee_pos(self) -> np.ndarray:
        """Measured end-effector (``robot.ee_site``) position, world frame."""

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Position and wxyz quaternion of a free object."""

    def object_velocity(self, name: str) -> np.ndarray:
        """Linear velocity (m/s) of a free object."""

    def touching(self, name: str, other: str) -> bool:
        """Whether object ``name`` is in contact with ``other`` (:data:`GRIPPER`, :data:`TABLE` or an object)."""

    def drawer_state(self) -> tuple[float, float]:
        """Drawer opening (m) and its rate (m/s)."""

    def render(self, camera: str, size: int) -> np.ndarray:
        """uint8 (size, size, 3) image from ``camera``."""

    def render_depth(self, camera: str, size: int) -> np.ndarray:
        """float32 (size, size) depth in metres along the optical axis."""

    def camera_info(self, camera: str, size: int) -> dict[str, Any]:
        """``{"intrinsics": K (3x3), "extrinsics": world -> camera (4x4)}`` (see :mod:`ember.sims.cameras`)."""

    def close(self) -> None: ...
