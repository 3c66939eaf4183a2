"""The tabletop :class:`~sims.tabletop.world.World` on Isaac Gym's ``gymapi`` (CPU pipeline, one env).

Same descriptions as the other backends: the robot is the robots/ Panda URDF, the scene comes from the task's
:class:`~sims.tabletop.scene.SceneSpec`, and IK is mink on the robots/ model (Isaac Gym has no IK of its own; the
kinematics are the same URDF's). Physics: PhysX at 240 Hz with position-driven DOFs whose targets are interpolated
across each control period, as on MuJoCo and PyBullet. Cameras are not wired in this adapter (state observations).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt

from ember.robots import get_robot
from ember.robots.ik import MinkIK
from ember.robots.panda import HAND_BODY, TCP_OFFSET, panda_model, urdf_path
from ember.sims.errors import SimError
from ember.sims.isaacgym import INSTALL_HINT
from ember.sims.tabletop.sampling import yaw_quat
from ember.sims.tabletop.scene import TABLE_CENTER, TABLE_HALF, Layout, SceneSpec
from ember.sims.tabletop.world import GRIPPER, TABLE, check_urdf_world

try:  # imported at module level so that mypy checks every call against isaacgym-stubs
    from isaacgym import gymapi
except ImportError as exc:  # not on PyPI: say what to install and where to get it
    raise SimError(INSTALL_HINT) from exc

TIMESTEP = 1.0 / 240.0
SUBSTEPS_PER_CTRL_UPDATE = 4
ARM_STIFFNESS = 400.0
ARM_DAMPING = 40.0
FINGER_STIFFNESS = 800.0
FINGER_DAMPING = 40.0
NO_COLLISION = 0xFFFF
"""Collision filter for markers: bodies that share a filter bit never collide."""


class IsaacGymWorld:
    """One Isaac Gym env holding a tabletop scene (the ``World`` protocol)."""

    def __init__(self, robot: str, scene: SceneSpec, control_hz: float = 10.0, device: int = 0) -> None:
        check_urdf_world("Isaac Gym", robot, scene)
        self.robot = get_robot(robot)
        self.scene = scene
        self.control_hz = float(control_hz)
        self.n_substeps = max(1, round(1.0 / (self.control_hz * TIMESTEP)))
        self.gym = gymapi.acquire_gym()

        params = gymapi.SimParams()
        params.dt = TIMESTEP
        params.substeps = 1
        params.up_axis = gymapi.UP_AXIS_Z
        params.gravity = gymapi.Vec3(0.0, 0.0, -9.81)
        params.use_gpu_pipeline = False
        params.physx.solver_type = 1
        params.physx.num_position_iterations = 8
        params.physx.num_velocity_iterations = 1
        params.physx.use_gpu = False
        self.sim = self.gym.create_sim(device, device, gymapi.SIM_PHYSX, params)
        plane = gymapi.PlaneParams()
        plane.normal = gymapi.Vec3(0.0, 0.0, 1.0)
        plane.distance = 0.75  # the floor, as in the other backends
        self.gym.add_ground(self.sim, plane)

        fixed = gymapi.AssetOptions()
        fixed.fix_base_link = True
        table = self.gym.create_box(self.sim, 2 * TABLE_HALF[0], 2 * TABLE_HALF[1], 2 * TABLE_HALF[2], fixed)
        robot_opts = gymapi.AssetOptions()
        robot_opts.fix_base_link = True
        robot_opts.default_dof_drive_mode = int(gymapi.DOF_MODE_POS)
        robot_opts.disable_gravity = (
            True  # like the real controller and the other backends: gravity compensated
        )
        urdf = urdf_path()
        robot_asset = self.gym.load_asset(self.sim, str(urdf.parent), urdf.name, robot_opts)

        self.env = self.gym.create_env(self.sim, gymapi.Vec3(-1.5, -1.5, -1.0), gymapi.Vec3(1.5, 1.5, 1.5), 1)
        self.table = self.gym.create_actor(
            self.env, table, self._pose([TABLE_CENTER[0], TABLE_CENTER[1], -TABLE_HALF[2]]), "table", 0, 0
        )
        self.actor = self.gym.create_actor(self.env, robot_asset, self._pose([0.0, 0.0, 0.0]), "robot", 0, 0)
        dof_names = self.gym.get_actor_dof_names(self.env, self.actor)
        self._arm = [dof_names.index(j) for j in self.robot.joint_names]
        self._grip = [dof_names.index(j) for j in self.robot.gripper_joint_names]
        props = self.gym.get_actor_dof_properties(self.env, self.actor)
        props["driveMode"][:] = int(gymapi.DOF_MODE_POS)
        props["stiffness"][self._arm] = ARM_STIFFNESS
        props["damping"][self._arm] = ARM_DAMPING
        props["effort"][self._arm] = self.robot.effort_limits
        props["stiffness"][self._grip] = FINGER_STIFFNESS
        props["damping"][self._grip] = FINGER_DAMPING
        self.gym.set_actor_dof_properties(self.env, self.actor, props)
        self._hand = self.gym.find_actor_rigid_body_index(
            self.env, self.actor, HAND_BODY, gymapi.DOMAIN_ACTOR
        )
        bodies = self.gym.get_actor_rigid_body_dict(self.env, self.actor)
        self._finger_bodies = {
            self.gym.get_actor_rigid_body_index(self.env, self.actor, i, gymapi.DOMAIN_ENV)
            for name, i in bodies.items()
            if "finger" in name
        }
        self._table_body = self.gym.get_actor_rigid_body_index(self.env, self.table, 0, gymapi.DOMAIN_ENV)

        self._objects: dict[str, int] = {}
        for obj in scene.objects:
            opts = gymapi.AssetOptions()
            opts.density = obj.mass / self._volume(obj.shape, obj.size)
            self._objects[obj.name] = self.gym.create_actor(
                self.env,
                self._asset(obj.shape, obj.size, opts),
                self._pose([0.5, 0.0, obj.half_height]),
                obj.name,
                0,
                0,
            )
        self._markers: dict[str, int] = {}
        for marker in scene.markers:
            opts = gymapi.AssetOptions()
            opts.fix_base_link = True
            opts.disable_gravity = True
            self._markers[marker.name] = self.gym.create_actor(
                self.env,
                self._asset(marker.shape, marker.size, opts),
                self._pose([0.5, 0.0, 0.1]),
                marker.name,
                0,
                NO_COLLISION,
            )
        self._object_bodies = {
            name: self.gym.get_actor_rigid_body_index(self.env, a, 0, gymapi.DOMAIN_ENV)
            for name, a in self._objects.items()
        }
        self.gym.prepare_sim(self.sim)
        self.ik_solver = MinkIK(panda_model(), self.robot.ee_site, self.robot.joint_names)
        self._q_cmd = self.robot.home_qpos.copy()
        self._targets = np.zeros(len(dof_names), dtype=np.float32)

    # ------------------------------------------------------------------ helpers
    def _pose(self, pos: Any, wxyz: Any = (1.0, 0.0, 0.0, 0.0)) -> Any:
        t = gymapi.Transform()
        t.p = gymapi.Vec3(float(pos[0]), float(pos[1]), float(pos[2]))
        t.r = gymapi.Quat(float(wxyz[1]), float(wxyz[2]), float(wxyz[3]), float(wxyz[0]))
        return t

    def _asset(self, shape: str, size: tuple[float, ...], opts: Any) -> Any:
        if shape == "box":
            return self.gym.create_box(self.sim, 2 * size[0], 2 * size[1], 2 * size[2], opts)
        if shape == "sphere":
            return self.gym.create_sphere(self.sim, size[0], opts)
        if shape == "cylinder":  # no cylinder primitive in gymapi: a capsule-free box of the same footprint
            return self.gym.create_box(self.sim, 2 * size[0], 2 * size[0], 2 * size[1], opts)
        raise SimError(f"unknown shape '{shape}'; valid: box, cylinder, sphere.")

    @staticmethod
    def _volume(shape: str, size: tuple[float, ...]) -> float:
        if shape == "sphere":
            return 4.0 / 3.0 * np.pi * size[0] ** 3
        if shape == "cylinder":
            return 8.0 * size[0] ** 2 * size[1]
        return 8.0 * size[0] * size[1] * size[2]

    def _bodies(self, actor: int, flags: int) -> npt.NDArray[np.void]:
        """The actor's rigid-body states: a numpy structured array (pose.p/r, vel.linear/angular); the stubs type
        it as a bare ``ndarray[RigidBodyState]``, so it is cast here once."""
        return cast(npt.NDArray[np.void], self.gym.get_actor_rigid_body_states(self.env, actor, flags))

    def _set_root(self, actor: int, pos: Any, yaw: float, rgba: tuple[float, ...]) -> None:
        states = self._bodies(actor, gymapi.STATE_ALL)
        q = yaw_quat(yaw)
        states["pose"]["p"][0] = (pos[0], pos[1], pos[2])
        states["pose"]["r"][0] = (q[1], q[2], q[3], q[0])
        states["vel"]["linear"][0] = (0.0, 0.0, 0.0)
        states["vel"]["angular"][0] = (0.0, 0.0, 0.0)
        self.gym.set_actor_rigid_body_states(self.env, actor, cast(Any, states), gymapi.STATE_ALL)
        self.gym.set_rigid_body_color(
            self.env,
            actor,
            0,
            gymapi.MESH_VISUAL,
            gymapi.Vec3(float(rgba[0]), float(rgba[1]), float(rgba[2])),
        )

    def _command(self, q_arm: np.ndarray, q_grip: np.ndarray) -> None:
        self._targets[self._arm] = q_arm
        self._targets[self._grip] = q_grip
        self.gym.set_actor_dof_position_targets(self.env, self.actor, self._targets)

    # ------------------------------------------------------------------ World API
    def reset(self, layout: Layout, q_arm: np.ndarray) -> None:
        dofs = self.gym.get_actor_dof_states(self.env, self.actor, gymapi.STATE_ALL)
        dofs["pos"][self._arm] = q_arm
        dofs["pos"][self._grip] = self.robot.gripper_open
        dofs["vel"][:] = 0.0
        self.gym.set_actor_dof_states(self.env, self.actor, dofs, gymapi.STATE_ALL)
        self._q_cmd = np.array(q_arm, dtype=float)
        self._command(self._q_cmd, self.robot.gripper_open)
        for name, place in layout.objects.items():
            self._set_root(self._objects[name], place.pos, place.yaw, place.rgba)
        for name, place in layout.markers.items():
            self._set_root(self._markers[name], place.pos, place.yaw, place.rgba)

    def ik(self, q_arm: np.ndarray, ee_pos: np.ndarray) -> np.ndarray:
        return self.ik_solver.solve(q_arm, ee_pos)

    def step(self, q_arm: np.ndarray, q_grip: np.ndarray) -> None:
        q_prev, q_new = self._q_cmd, np.asarray(q_arm, dtype=float)
        chunks = max(1, self.n_substeps // SUBSTEPS_PER_CTRL_UPDATE)
        for i in range(chunks):
            n = self.n_substeps // chunks + (1 if i < self.n_substeps % chunks else 0)
            self._command(q_prev + (q_new - q_prev) * ((i + 1) / chunks), np.asarray(q_grip, dtype=float))
            for _ in range(n):
                self.gym.simulate(self.sim)
                self.gym.fetch_results(self.sim, True)
        self._q_cmd = q_new

    def joint_positions(self) -> np.ndarray:
        pos = self.gym.get_actor_dof_states(self.env, self.actor, gymapi.STATE_POS)["pos"]
        return np.asarray(pos[self._arm + self._grip], dtype=float)

    def ee_pos(self) -> np.ndarray:
        pose = self._bodies(self.actor, gymapi.STATE_POS)["pose"][self._hand]
        p = np.array([pose["p"]["x"], pose["p"]["y"], pose["p"]["z"]], dtype=float)
        x, y, z, w = (float(pose["r"][k]) for k in ("x", "y", "z", "w"))
        approach = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])  # hand +z
        return p + approach * TCP_OFFSET

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        pose = self._bodies(self._objects[name], gymapi.STATE_POS)["pose"][0]
        pos = np.array([pose["p"]["x"], pose["p"]["y"], pose["p"]["z"]], dtype=float)
        return pos, np.array([pose["r"]["w"], pose["r"]["x"], pose["r"]["y"], pose["r"]["z"]], dtype=float)

    def object_velocity(self, name: str) -> np.ndarray:
        vel = self._bodies(self._objects[name], gymapi.STATE_VEL)["vel"][0]
        return np.array([vel["linear"]["x"], vel["linear"]["y"], vel["linear"]["z"]], dtype=float)

    def touching(self, name: str, other: str) -> bool:
        body = self._object_bodies[name]
        if other == GRIPPER:
            others = self._finger_bodies
        elif other == TABLE:
            others = {self._table_body}
        elif other in self._object_bodies:
            others = {self._object_bodies[other]}
        else:
            raise SimError(f"touching: unknown body '{other}'.")
        for c in self.gym.get_env_rigid_contacts(self.env):
            pair = {int(c["body0"]), int(c["body1"])}
            if body in pair and pair & others:
                return True
        return False

    def drawer_state(self) -> tuple[float, float]:
        raise SimError("this scene has no drawer (the Drawer task is MuJoCo-only).")

    def render(self, camera: str, size: int) -> np.ndarray:
        raise SimError("the Isaac Gym adapter has no cameras yet; use obs_mode='state' (or another backend).")

    def render_depth(self, camera: str, size: int) -> np.ndarray:
        raise SimError("the Isaac Gym adapter has no cameras yet; use obs_mode='state' (or another backend).")

    def camera_info(self, camera: str, size: int) -> dict[str, Any]:
        raise SimError("the Isaac Gym adapter has no cameras yet; use obs_mode='state' (or another backend).")

    def close(self) -> None:
        self.gym.destroy_sim(self.sim)
