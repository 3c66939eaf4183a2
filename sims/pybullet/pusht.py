"""PushT on PyBullet: the same task, contract and expert as :class:`ember.sims.mujoco.pusht.PushTEnv`, other physics.

Only the backend hooks of :class:`ember.sims.pusht_env.PushTTask` are filled in (scene building, joint state, driving the
servos, block/pusher poses, cameras); spaces, validation, episode sampling, control, observations, splits and the
coverage metric are inherited, so both backends are the same task by construction. The scene mirrors ``ember.sims.mujoco.pusht_scene``: a pusher rod held by
the Panda (added to the robots/ URDF as a fixed link), a T block built from the same two rectangles, and the same
frictions (PyBullet multiplies the two bodies' coefficients at a contact, MuJoCo takes the pusher's, so the values
below are chosen to give the same products).
"""

from __future__ import annotations

import math
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ember.robots.bullet import Bullet
from ember.robots.panda import HAND_BODY, TCP_OFFSET, urdf_path, urdf_text
from ember.robots.pybullet_ik import PyBulletIK
from ember.sims.cameras import CameraSpec
from ember.sims.mujoco.pusht_scene import (
    BLOCK_DENSITY,
    BLOCK_FRICTION,
    BLOCK_HEIGHT,
    BLOCK_RGBA,
    CAMERAS,
    DISTRACTOR_SLOTS,
    GOAL_RGBA,
    PUSHER_FRICTION,
    PUSHER_LENGTH,
    PUSHER_RADIUS,
    TABLE_ORIGIN,
    TABLE_RGBA,
    table_to_world,
)
from ember.sims.pusht_env import PushTTask, table_pose
from ember.sims.pybullet.render import BulletCamera, wrist_camera
from ember.sims.pybullet.robot import BulletPanda
from ember.sims.pybullet.scene import add_floor, add_table
from ember.sims.randomization import LIGHTING_PRESETS
from ember.sims.tshape import Pose2D

TIMESTEP = 1.0 / 240.0
PUSHER_TIP = TCP_OFFSET + PUSHER_LENGTH
"""Distance (m) from the hand frame to the pusher's bottom (``pusher_tip`` in MuJoCo)."""
TABLE_FRICTION = 1.0
"""Block-table friction = BLOCK_FRICTION * 1.0, as in MuJoCo."""
PUSHER_LINK_FRICTION = PUSHER_FRICTION / BLOCK_FRICTION
"""Pusher-block friction = this * BLOCK_FRICTION = PUSHER_FRICTION, as in MuJoCo."""


@lru_cache(maxsize=1)
def pusher_urdf() -> str:
    """The robots/ Panda URDF with the pusher rod fixed to the hand (written once per process)."""
    length = PUSHER_LENGTH + 0.02  # as in MuJoCo: the rod reaches 2 cm into the closed fingers
    link = f"""
  <link name="pusher">
    <inertial><origin xyz="0 0 0"/><mass value="0.05"/><inertia ixx="1e-5" ixy="0" ixz="0" iyy="1e-5" iyz="0" izz="1e-6"/></inertial>
    <visual><geometry><cylinder radius="{PUSHER_RADIUS}" length="{length}"/></geometry>
      <material name="pusher_dark"><color rgba="0.15 0.15 0.18 1"/></material></visual>
    <collision><geometry><cylinder radius="{PUSHER_RADIUS}" length="{length}"/></geometry></collision>
  </link>
  <joint name="pusher_joint" type="fixed">
    <parent link="{HAND_BODY}"/><child link="pusher"/><origin xyz="0 0 {PUSHER_TIP - length / 2}" rpy="0 0 0"/>
  </joint>
</robot>"""
    text = urdf_text().replace("</robot>", link)
    path = Path(tempfile.mkdtemp(prefix="ember_pusht_")) / "panda_pusher.urdf"
    path.write_text(text)
    return str(path)


class PushTEnv(PushTTask):
    """``ember/PushT-v0`` with ``backend="pybullet"``; see :class:`ember.sims.pusht_env.PushTTask` for the contract."""

    def _build_physics(self) -> None:
        self.p = p = Bullet()
        p.setTimeStep(TIMESTEP)
        p.setGravity(0, 0, -9.81)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        self.n_substeps = max(1, round(1.0 / (self.control_hz * TIMESTEP)))
        add_table(
            p, (0.36, 0.0, -0.025), (0.62, 0.6, 0.025), TABLE_RGBA, TABLE_FRICTION, self._split.table_texture
        )
        add_floor(p)
        self._arm = BulletPanda(
            p, pusher_urdf(), colliding_links=("pusher",), finger_friction=PUSHER_LINK_FRICTION
        )

        self._block = -1
        self._block_rgba: tuple[float, ...] = BLOCK_RGBA
        self._create_block()
        rects = self.tshape.rects
        flat = dict(shapeTypes=[p.GEOM_BOX] * 2, halfExtents=[[hx, hy, 0.0004] for _, _, hx, hy in rects])
        goal_vis = p.createVisualShapeArray(
            visualFramePositions=[[cx, cy, 0.0005] for cx, cy, _, _ in rects],
            rgbaColors=[GOAL_RGBA] * 2,
            **flat,
        )
        self._goal = p.createMultiBody(baseMass=0, baseCollisionShapeIndex=-1, baseVisualShapeIndex=goal_vis)
        for i in range(self._split.distractors):  # visual clutter outside the workspace, as in MuJoCo
            x, y, _ = table_to_world(np.array(DISTRACTOR_SLOTS[i % len(DISTRACTOR_SLOTS)]))
            if i % 2 == 0:
                dvis = p.createVisualShape(p.GEOM_SPHERE, radius=0.03, rgbaColor=[0.55, 0.55, 0.55, 1])
                z = 0.03
            else:
                dvis = p.createVisualShape(
                    p.GEOM_BOX, halfExtents=[0.025, 0.025, 0.04], rgbaColor=[0.45, 0.3, 0.18, 1]
                )
                z = 0.04
            p.createMultiBody(
                baseMass=0, baseCollisionShapeIndex=-1, baseVisualShapeIndex=dvis, basePosition=[x, y, z]
            )
        self._light = LIGHTING_PRESETS[self._split.lighting]
        self._cameras = {
            name: CameraSpec(name, pos, target, fovy) for name, (pos, target, fovy) in CAMERAS.items()
        }
        self._renderer = BulletCamera(p)
        self.ik = PyBulletIK(
            str(urdf_path()),
            HAND_BODY,
            self.robot.joint_names,
            tcp_offset=(0, 0, PUSHER_TIP),
            rest=self.robot.home_qpos,
        )

    def _create_block(self) -> None:
        """(Re)create the T block; done at every reset, since PyBullet would otherwise carry the block-table contact
        manifold (and its warm-start impulses) into the next episode and equal seeds would not replay exactly."""
        p = self.p
        half_z = BLOCK_HEIGHT / 2
        if self._block >= 0:
            p.removeBody(self._block)
        else:  # the shapes are made once; only the body is new
            rects = self.tshape.rects
            boxes = dict(
                shapeTypes=[p.GEOM_BOX] * 2, halfExtents=[[hx, hy, half_z] for _, _, hx, hy in rects]
            )
            frames = [[cx, cy, 0.0] for cx, cy, _, _ in rects]
            self._block_shapes = (
                p.createCollisionShapeArray(collisionFramePositions=frames, **boxes),
                p.createVisualShapeArray(visualFramePositions=frames, rgbaColors=[BLOCK_RGBA] * 2, **boxes),
            )
        col, vis = self._block_shapes
        mass = BLOCK_DENSITY * self.tshape.area * BLOCK_HEIGHT
        self._block = p.createMultiBody(
            baseMass=mass,
            baseCollisionShapeIndex=col,
            baseVisualShapeIndex=vis,
            basePosition=[TABLE_ORIGIN[0], TABLE_ORIGIN[1] + 0.1, half_z],
        )
        p.changeDynamics(
            self._block, -1, lateralFriction=BLOCK_FRICTION, spinningFriction=0.0, rollingFriction=0.0
        )
        for link in (-1, 0):  # the visual array has two parts; colour both (heldout_object changes it)
            p.changeVisualShape(self._block, link, rgbaColor=list(self._block_rgba))

    def _set_block_rgba(self, rgba: tuple[float, ...]) -> None:
        self._block_rgba = tuple(rgba)  # applied when the block is (re)created at the end of reset

    def _joint_positions(self) -> np.ndarray:
        return self._arm.joint_positions()

    def _drive(self, q_prev: np.ndarray, q_new: np.ndarray) -> None:
        self._arm.drive(q_new, self._grip_closed, self.n_substeps)

    def block_pose(self) -> np.ndarray:
        pos, (x, y, z, w) = self.p.getBasePositionAndOrientation(self._block)
        return table_pose(pos, (w, x, y, z))

    def pusher_pos(self) -> np.ndarray:
        pos, rot = self._arm.link_pose(self._arm.hand)
        tip = pos + rot[:, 2] * PUSHER_TIP
        return np.array([tip[0] - TABLE_ORIGIN[0], tip[1] - TABLE_ORIGIN[1]])

    def set_block_pose(self, pose: Pose2D) -> None:
        world = [pose[0] + TABLE_ORIGIN[0], pose[1] + TABLE_ORIGIN[1], BLOCK_HEIGHT / 2]
        self.p.resetBasePositionAndOrientation(
            self._block, world, [0.0, 0.0, math.sin(pose[2] / 2), math.cos(pose[2] / 2)]
        )
        self.p.resetBaseVelocity(self._block, [0, 0, 0], [0, 0, 0])

    def _reset_physics(self, block: Pose2D) -> None:
        self._create_block()
        self._arm.reset(self._q_start, self._grip_closed)
        goal = table_to_world(self.goal_pose[:2], 0.0)
        self.p.resetBasePositionAndOrientation(
            self._goal,
            goal.tolist(),
            [0.0, 0.0, math.sin(self.goal_pose[2] / 2), math.cos(self.goal_pose[2] / 2)],
        )
        self.set_block_pose(block)

    def _render_camera(self, camera: str, size: int) -> np.ndarray:
        cam = (
            wrist_camera(*self._arm.link_pose(self._arm.hand)) if camera == "wrist" else self._cameras[camera]
        )
        return self._renderer.render(cam, size, self._light)[0]

    def close(self) -> None:
        self.ik.close()
        self.p.close()
