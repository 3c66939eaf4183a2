"""PushT in MuJoCo (``ember/PushT-v0``, ``backend="mujoco"``); the task itself is :class:`ember.sims.pusht_env.PushTTask`.

Physics at 2 ms: each control step's IK solution (:class:`ember.robots.ik.MinkIK`) becomes the target of the arm's
position servos, interpolated linearly across the physics substeps, so the hand moves smoothly. The scene is
:mod:`ember.sims.mujoco.pusht_scene`.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from ember.robots.ik import MinkIK
from ember.sims.mujoco.pusht_scene import (
    BLOCK_HEIGHT,
    CAMERA_NAMES,
    PUSHER_SITE,
    ROBOT_PREFIX,
    TABLE_ORIGIN,
    build_pusht_spec,
    pusher_robot_spec,
    table_to_world,
)
from ember.sims.mujoco.render import CameraRenderer, make_fast
from ember.sims.pusht_env import INSTRUCTIONS, PushTTask, table_pose
from ember.sims.randomization import LIGHTING_PRESETS
from ember.sims.tshape import Pose2D

__all__ = ["INSTRUCTIONS", "PushTEnv"]

_SUBSTEPS_PER_CTRL_UPDATE = 5  # servo targets are interpolated every 10 ms


class PushTEnv(PushTTask):
    """``ember/PushT-v0`` with ``backend="mujoco"``; see :class:`ember.sims.pusht_env.PushTTask` for the contract."""

    def _build_physics(self) -> None:
        """Compile the scene; set ``ik`` (``solve(q, world_pos)``) and ``n_substeps``."""
        spec = build_pusht_spec(
            self.tshape,
            self.goal_pose,
            offscreen_size=max(640, self.render_size, self.image_size),
            table_texture=self._split.table_texture,
            distractors=self._split.distractors,
        )
        self.model = spec.compile()
        make_fast(self.model)
        self.data = mujoco.MjData(self.model)
        self.n_substeps = max(1, round(1.0 / (self.control_hz * self.model.opt.timestep)))

        m = self.model
        arm = [ROBOT_PREFIX + j for j in self.robot.joint_names]
        grip = [ROBOT_PREFIX + j for j in self.robot.gripper_joint_names]
        self._arm_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in arm])
        self._grip_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in grip])
        self._arm_act = np.array([m.actuator(j).id for j in arm])
        self._grip_act = np.array([m.actuator(j).id for j in grip])
        self._ee_site = m.site(ROBOT_PREFIX + PUSHER_SITE).id
        block_joint = m.joint("block_joint").id
        self._block_qadr = m.jnt_qposadr[block_joint]
        self._block_vadr = m.jnt_dofadr[block_joint]
        self._camera_ids = {
            name: m.camera(name if name != "wrist" else ROBOT_PREFIX + name).id for name in CAMERA_NAMES
        }
        self._block_geoms = [m.geom("block_bar").id, m.geom("block_stem").id]
        if self._split.lighting != "default":  # heldout_scene: an unseen light
            light = LIGHTING_PRESETS[self._split.lighting]
            key = m.light("key").id
            m.light_dir[key] = np.asarray(light.direction) / np.linalg.norm(light.direction)
            m.light_diffuse[key] = light.diffuse

        # IK runs on the arm alone (same base pose as in the scene: the world origin), which keeps it fast.
        self.ik = MinkIK(pusher_robot_spec().compile(), PUSHER_SITE, self.robot.joint_names)
        self._renderers: dict[int, CameraRenderer] = {}

    def _set_block_rgba(self, rgba: tuple[float, ...]) -> None:
        for geom in self._block_geoms:
            self.model.geom_rgba[geom] = rgba

    def _joint_positions(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[self._arm_qadr], self.data.qpos[self._grip_qadr]])

    def _drive(self, q_prev: np.ndarray, q_new: np.ndarray) -> None:
        """One control period: servo targets interpolated from ``q_prev`` to ``q_new`` across the substeps."""
        chunks = max(1, self.n_substeps // _SUBSTEPS_PER_CTRL_UPDATE)
        for i in range(chunks):
            n = self.n_substeps // chunks + (1 if i < self.n_substeps % chunks else 0)
            self.data.ctrl[self._arm_act] = q_prev + (q_new - q_prev) * ((i + 1) / chunks)
            mujoco.mj_step(self.model, self.data, nstep=n)

    def block_pose(self) -> np.ndarray:
        q = self.data.qpos[self._block_qadr : self._block_qadr + 7]
        return table_pose(q[:3], q[3:7])

    def pusher_pos(self) -> np.ndarray:
        p = self.data.site_xpos[self._ee_site]
        return np.array([p[0] - TABLE_ORIGIN[0], p[1] - TABLE_ORIGIN[1]])

    def set_block_pose(self, pose: Pose2D) -> None:
        qa, va = self._block_qadr, self._block_vadr
        self.data.qpos[qa : qa + 3] = [pose[0] + TABLE_ORIGIN[0], pose[1] + TABLE_ORIGIN[1], BLOCK_HEIGHT / 2]
        self.data.qpos[qa + 3 : qa + 7] = [math.cos(pose[2] / 2), 0.0, 0.0, math.sin(pose[2] / 2)]
        self.data.qvel[va : va + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def _reset_physics(self, block: Pose2D) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._arm_qadr] = self._q_start
        self.data.qpos[self._grip_qadr] = self._grip_closed
        self.data.ctrl[self._arm_act] = self._q_start
        self.data.ctrl[self._grip_act] = self._grip_closed
        self.data.mocap_pos[0] = table_to_world(self.goal_pose[:2], 0.0)
        self.data.mocap_quat[0] = [math.cos(self.goal_pose[2] / 2), 0, 0, math.sin(self.goal_pose[2] / 2)]
        self.set_block_pose(block)

    def _render_camera(self, camera: str, size: int) -> np.ndarray:
        renderer = self._renderers.get(size)
        if renderer is None:
            renderer = self._renderers[size] = CameraRenderer(self.model, size, size)
        return renderer.render(self.data, self.model.camera(self._camera_ids[camera]).name)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
