"""The MuJoCo implementation of :class:`ember.sims.tabletop.world.World`.

Control: each control step solves IK once (mink, on the arm model alone: same base pose, so it stays fast) and the
position servos' targets are interpolated linearly across the physics substeps, as in PushT, so the arm moves
smoothly instead of jumping to each new target. Physics runs at the robot's 2 ms timestep.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from ember.robots import get_robot, robot_mjspec
from ember.robots.ik import MinkIK
from ember.sims.cameras import MAX_DEPTH, camera_info
from ember.sims.errors import SimError
from ember.sims.mujoco.render import CameraRenderer, make_fast
from ember.sims.mujoco.scene_spec import look_at_quat
from ember.sims.mujoco.tabletop_scene import (
    CABINET_BODY,
    DRAWER_JOINT,
    KEY_LIGHT,
    ROBOT_PREFIX,
    TABLE_GEOM,
    build_tabletop_spec,
)
from ember.sims.tabletop.sampling import yaw_quat
from ember.sims.tabletop.scene import CAMERAS, RENDER_CAMERA, WRIST_CAMERA, Layout, SceneSpec
from ember.sims.tabletop.world import GRIPPER, TABLE

SUBSTEPS_PER_CTRL_UPDATE = 5
IK_ITERS_PER_STEP = 1
"""Servo targets are re-interpolated every 5 physics steps (10 ms)."""


class MujocoWorld:
    """One compiled tabletop scene with its data, IK and renderers."""

    def __init__(
        self, robot: str, scene: SceneSpec, control_hz: float = 10.0, offscreen_size: int = 640
    ) -> None:
        self.robot = get_robot(robot)
        self.scene = scene
        self.control_hz = float(control_hz)
        self.model = build_tabletop_spec(robot, scene, offscreen_size).compile()
        make_fast(self.model)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.n_substeps = max(1, round(1.0 / (self.control_hz * m.opt.timestep)))
        chunks = max(1, self.n_substeps // SUBSTEPS_PER_CTRL_UPDATE)
        self._chunks = [
            self.n_substeps // chunks + (1 if i < self.n_substeps % chunks else 0) for i in range(chunks)
        ]
        """Physics steps per servo-target update within one control period."""

        arm = [ROBOT_PREFIX + j for j in self.robot.joint_names]
        grip = [ROBOT_PREFIX + j for j in self.robot.gripper_joint_names]
        self._arm_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in arm])
        self._grip_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in grip])
        # One servo per state entry, named like its joint (Panda) or in the same order (UR5e: Menagerie names).
        self._arm_act = np.arange(self.robot.dof)
        self._grip_act = np.arange(self.robot.dof, m.nu)
        if len(self._grip_act) not in (1, len(grip)):
            raise SimError(
                f"robot '{robot}': expected 1 or {len(grip)} gripper actuators, found {len(self._grip_act)}."
            )
        self._ee_site = m.site(ROBOT_PREFIX + self.robot.ee_site).id
        ee_body = int(m.site_bodyid[self._ee_site])
        self._gripper_bodies = frozenset(b for b in range(m.nbody) if self._in_subtree(b, ee_body))
        self._table_geom = m.geom(TABLE_GEOM).id
        self._objects = {o.name: m.joint(f"{o.name}_joint").id for o in scene.objects}
        self._object_bodies = {o.name: m.body(o.name).id for o in scene.objects}
        self._object_geoms = {o.name: m.geom(o.name).id for o in scene.objects}
        self._markers = {
            mk.name: (int(m.body_mocapid[m.body(mk.name).id]), m.geom(mk.name).id) for mk in scene.markers
        }
        self._key_light = m.light(KEY_LIGHT).id
        self._cameras = {
            name: m.camera(ROBOT_PREFIX + name if name == WRIST_CAMERA else name).id
            for name in (*CAMERAS, WRIST_CAMERA, RENDER_CAMERA.name)
        }
        self._camera_names = {name: m.camera(cid).name for name, cid in self._cameras.items()}
        self._camera_info: dict[tuple[str, int], dict[str, Any]] = {}
        """Intrinsics/extrinsics of the fixed cameras, which change only at reset (camera jitter)."""
        if scene.drawer is not None:
            self._cabinet = m.body(CABINET_BODY).id
            joint = m.joint(DRAWER_JOINT).id
            self._drawer_qadr, self._drawer_vadr = m.jnt_qposadr[joint], m.jnt_dofadr[joint]
            self._drawer_front = m.geom("drawer_front").id

        ik_model = robot_mjspec(robot).compile()
        # One mink iteration per control step: each solve starts from the previous step's solution, so a target
        # the policy holds converges within a step or two, and the solve costs half as much (about 0.2 ms).
        self.ik_solver = MinkIK(
            ik_model, self.robot.ee_site, self.robot.joint_names, max_iters=IK_ITERS_PER_STEP
        )
        self._q_cmd = self.robot.home_qpos.copy()
        self._renderers: dict[int, CameraRenderer] = {}

    def _in_subtree(self, body: int, root: int) -> bool:
        while body > 0:
            if body == root:
                return True
            body = int(self.model.body_parentid[body])
        return False

    # ------------------------------------------------------------------ World API
    def reset(self, layout: Layout, q_arm: np.ndarray) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self._camera_info.clear()
        d.qpos[self._arm_qadr] = q_arm
        d.qpos[self._grip_qadr] = self.robot.gripper_open
        d.ctrl[self._arm_act] = q_arm
        d.ctrl[self._grip_act] = self.robot.gripper_open[: len(self._grip_act)]
        self._q_cmd = np.array(q_arm, dtype=float)
        for name, place in layout.objects.items():
            adr = m.jnt_qposadr[self._objects[name]]
            d.qpos[adr : adr + 3] = place.pos
            d.qpos[adr + 3 : adr + 7] = yaw_quat(place.yaw)
            m.geom_rgba[self._object_geoms[name]] = place.rgba
        for name, place in layout.markers.items():
            mocap, geom = self._markers[name]
            d.mocap_pos[mocap] = place.pos
            d.mocap_quat[mocap] = yaw_quat(place.yaw)
            m.geom_rgba[geom] = place.rgba
        if layout.drawer is not None:
            m.body_pos[self._cabinet] = layout.drawer.pos
            m.geom_rgba[self._drawer_front] = layout.drawer.rgba
            d.qpos[self._drawer_qadr] = layout.drawer_opening
        if layout.lighting is not None:
            m.light_dir[self._key_light] = np.asarray(layout.lighting.direction) / np.linalg.norm(
                layout.lighting.direction
            )
            m.light_diffuse[self._key_light] = layout.lighting.diffuse
        for name, cam in layout.cameras.items():
            cid = self._cameras[name]
            m.cam_pos[cid] = cam.position
            m.cam_quat[cid] = look_at_quat(cam.position, cam.target)
        mujoco.mj_forward(m, d)

    def ik(self, q_arm: np.ndarray, ee_pos: np.ndarray) -> np.ndarray:
        return self.ik_solver.solve(q_arm, ee_pos)

    def step(self, q_arm: np.ndarray, q_grip: np.ndarray) -> None:
        d, m = self.data, self.model
        d.ctrl[self._grip_act] = q_grip[: len(self._grip_act)]
        q_prev, q_new = self._q_cmd, np.asarray(q_arm, dtype=float)
        arm = slice(0, self.robot.dof)  # the arm's servos come first (see robots.robot_mjspec)
        n_chunks = len(self._chunks)
        for i, n in enumerate(self._chunks):
            d.ctrl[arm] = q_prev + (q_new - q_prev) * ((i + 1) / n_chunks)
            mujoco.mj_step(m, d, nstep=n)
        self._q_cmd = q_new

    def servo_addresses(self) -> dict[str, np.ndarray]:
        """Where the state joints (arm, then fingers) live in ``qpos`` / ``qvel`` and which actuators drive them
        (arm servos, then the gripper's 1 or 2): for a driver that steps this model in real time itself (the ROS
        mock arm hosting a task, ``ember.real.task_scene``) instead of through :meth:`step`."""
        m = self.model
        joints = [
            m.joint(ROBOT_PREFIX + j).id for j in (*self.robot.joint_names, *self.robot.gripper_joint_names)
        ]
        return {
            "qpos": np.concatenate([self._arm_qadr, self._grip_qadr]),
            "qvel": np.array([m.jnt_dofadr[j] for j in joints]),
            "arm_actuators": self._arm_act.copy(),
            "gripper_actuators": self._grip_act.copy(),
        }

    def camera_id(self, camera: str) -> int:
        """MuJoCo id of a task camera (``front``, ``side``, ``wrist``, ...)."""
        return self._cameras[camera]

    def joint_positions(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[self._arm_qadr], self.data.qpos[self._grip_qadr]])

    def ee_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._ee_site].copy()

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        adr = self.model.jnt_qposadr[self._objects[name]]
        q = self.data.qpos[adr : adr + 7]
        return q[:3].copy(), q[3:7].copy()

    def object_velocity(self, name: str) -> np.ndarray:
        adr = self.model.jnt_dofadr[self._objects[name]]
        return self.data.qvel[adr : adr + 3].copy()

    def touching(self, name: str, other: str) -> bool:
        m, d = self.model, self.data
        body = self._object_bodies[name]
        for i in range(d.ncon):
            c = d.contact[i]
            b1, b2 = int(m.geom_bodyid[c.geom[0]]), int(m.geom_bodyid[c.geom[1]])
            if body not in (b1, b2):
                continue
            o_body, o_geom = (b2, c.geom[1]) if b1 == body else (b1, c.geom[0])
            if other == GRIPPER and o_body in self._gripper_bodies:
                return True
            if other == TABLE and o_geom == self._table_geom:
                return True
            if other in self._object_bodies and o_body == self._object_bodies[other]:
                return True
        return False

    def drawer_state(self) -> tuple[float, float]:
        if self.scene.drawer is None:
            raise SimError("this scene has no drawer.")
        return float(self.data.qpos[self._drawer_qadr]), float(self.data.qvel[self._drawer_vadr])

    def _renderer(self, size: int) -> CameraRenderer:
        renderer = self._renderers.get(size)
        if renderer is None:
            renderer = self._renderers[size] = CameraRenderer(self.model, size, size)
        return renderer

    def render(self, camera: str, size: int) -> np.ndarray:
        return self._renderer(size).render(self.data, self._camera_names[camera])

    def render_depth(self, camera: str, size: int) -> np.ndarray:
        depth = self._renderer(size).render_depth(self.data, self._camera_names[camera])
        return np.clip(depth, 0.0, MAX_DEPTH).astype(np.float32)

    def camera_info(self, camera: str, size: int) -> dict[str, Any]:
        key = (camera, size)
        info = self._camera_info.get(key)
        if info is None:
            cid = self._cameras[camera]
            rot = self.data.cam_xmat[cid].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])  # MuJoCo -> OpenCV axes
            info = camera_info(float(self.model.cam_fovy[cid]), size, size, rot, self.data.cam_xpos[cid])
            if camera != WRIST_CAMERA:  # the wrist camera moves with the hand
                self._camera_info[key] = info
        return {
            k: v.copy() for k, v in info.items()
        }  # callers own what they get (Gymnasium infos must not alias)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
