"""The PyBullet implementation of :class:`ember.sims.tabletop.world.World`: the same scenes from the same descriptions.

The robot is the same URDF MuJoCo compiles (``ember.robots.panda.urdf_path``), with the same choices: only the fingers
collide, the end effector is the Franka TCP (``TCP_OFFSET`` below the hand), position servos with the URDF's effort
limits. IK is PyBullet's own (:class:`ember.robots.pybullet_ik.PyBulletIK`). Physics runs at PyBullet's default 240 Hz;
servo targets are interpolated across the substeps of a control period, as on MuJoCo.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.robots import get_robot
from ember.robots.bullet import Bullet
from ember.robots.panda import FINGER_BODIES, HAND_BODY, TCP_OFFSET, urdf_path
from ember.robots.pybullet_ik import PyBulletIK
from ember.sims.errors import SimError
from ember.sims.pybullet.render import BulletCamera, wrist_camera
from ember.sims.pybullet.robot import BulletPanda
from ember.sims.pybullet.scene import add_floor, add_table
from ember.sims.tabletop.sampling import yaw_quat
from ember.sims.tabletop.scene import (
    CAMERAS,
    RENDER_CAMERA,
    TABLE_CENTER,
    TABLE_HALF,
    WRIST_CAMERA,
    Layout,
    SceneSpec,
)
from ember.sims.tabletop.world import GRIPPER, TABLE, check_urdf_world

TIMESTEP = 1.0 / 240.0
TABLE_RGBA = (0.72, 0.64, 0.52, 1.0)


def _xyzw(wxyz: np.ndarray) -> list[float]:
    return [float(wxyz[1]), float(wxyz[2]), float(wxyz[3]), float(wxyz[0])]


class PyBulletWorld:
    """One PyBullet DIRECT client holding a tabletop scene."""

    def __init__(self, robot: str, scene: SceneSpec, control_hz: float = 10.0) -> None:
        check_urdf_world("PyBullet", robot, scene)
        self.robot = get_robot(robot)
        self.scene = scene
        self.control_hz = float(control_hz)
        self.n_substeps = max(1, round(1.0 / (self.control_hz * TIMESTEP)))
        self.p = p = Bullet()
        p.setTimeStep(TIMESTEP)
        p.setGravity(0, 0, -9.81)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1)

        self.table = add_table(
            p,
            (TABLE_CENTER[0], TABLE_CENTER[1], -TABLE_HALF[2]),
            TABLE_HALF,
            TABLE_RGBA,
            0.8,
            scene.table_texture,
        )
        add_floor(p)
        self.arm = BulletPanda(p, str(urdf_path()), colliding_links=FINGER_BODIES)

        self._objects: dict[str, int] = {}
        self._object_shapes = {
            obj.name: self._shapes(obj.shape, obj.size, collide=True) for obj in scene.objects
        }
        self._create_objects()
        self._markers: dict[str, int] = {}
        for marker in scene.markers:
            _, vis = self._shapes(marker.shape, marker.size, collide=False)
            self._markers[marker.name] = p.createMultiBody(
                baseMass=0, baseCollisionShapeIndex=-1, baseVisualShapeIndex=vis, basePosition=[0.5, 0, 0.1]
            )

        self.ik_solver = PyBulletIK(
            str(urdf_path()),
            HAND_BODY,
            self.robot.joint_names,
            tcp_offset=(0, 0, TCP_OFFSET),
            rest=self.robot.home_qpos,
        )
        self._cameras = {**CAMERAS, RENDER_CAMERA.name: RENDER_CAMERA}
        self._light = None
        self._renderer = BulletCamera(p)
        self._frames: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        """RGB + depth rendered since the last step: an observation asks for both of each camera."""

    def _create_objects(self) -> None:
        """(Re)create the free objects. Done at every reset: PyBullet keeps contact manifolds (and their warm-start
        impulses) of pairs that stay in contact across resetBasePositionAndOrientation, so reused bodies would make
        equal seeds give slightly different episodes."""
        p = self.p
        for body in self._objects.values():
            p.removeBody(body)
        for obj in self.scene.objects:
            col, vis = self._object_shapes[obj.name]  # shapes are made once; only the bodies are new
            body = p.createMultiBody(
                baseMass=obj.mass,
                baseCollisionShapeIndex=col,
                baseVisualShapeIndex=vis,
                basePosition=[0.5, 0, obj.half_height],
            )
            p.changeDynamics(
                body, -1, lateralFriction=obj.friction, spinningFriction=0.001, rollingFriction=0.0001
            )
            self._objects[obj.name] = body

    def _shapes(self, shape: str, size: tuple[float, ...], collide: bool) -> tuple[int, int]:
        p = self.p
        grey = [0.5, 0.5, 0.5, 1]
        if shape == "box":
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=list(size), rgbaColor=grey)
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(size)) if collide else -1
        elif shape == "cylinder":
            vis = p.createVisualShape(p.GEOM_CYLINDER, radius=size[0], length=2 * size[1], rgbaColor=grey)
            col = (
                p.createCollisionShape(p.GEOM_CYLINDER, radius=size[0], height=2 * size[1]) if collide else -1
            )
        elif shape == "sphere":
            vis = p.createVisualShape(p.GEOM_SPHERE, radius=size[0], rgbaColor=grey)
            col = p.createCollisionShape(p.GEOM_SPHERE, radius=size[0]) if collide else -1
        else:
            raise SimError(f"unknown shape '{shape}'; valid: box, cylinder, sphere.")
        return col, vis

    # ------------------------------------------------------------------ World API
    def reset(self, layout: Layout, q_arm: np.ndarray) -> None:
        p = self.p
        self._frames.clear()
        self._create_objects()
        self.arm.reset(q_arm, self.robot.gripper_open)
        for name, place in layout.objects.items():
            body = self._objects[name]
            p.resetBasePositionAndOrientation(body, place.pos.tolist(), _xyzw(yaw_quat(place.yaw)))
            p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0])
            p.changeVisualShape(body, -1, rgbaColor=list(place.rgba))
        for name, place in layout.markers.items():
            body = self._markers[name]
            p.resetBasePositionAndOrientation(body, place.pos.tolist(), _xyzw(yaw_quat(place.yaw)))
            p.changeVisualShape(body, -1, rgbaColor=list(place.rgba))
        self._light = layout.lighting
        self._cameras.update(layout.cameras)

    def ik(self, q_arm: np.ndarray, ee_pos: np.ndarray) -> np.ndarray:
        return self.ik_solver.solve(q_arm, ee_pos)

    def step(self, q_arm: np.ndarray, q_grip: np.ndarray) -> None:
        self._frames.clear()
        self.arm.drive(q_arm, q_grip, self.n_substeps)

    def joint_positions(self) -> np.ndarray:
        return self.arm.joint_positions()

    def ee_pos(self) -> np.ndarray:
        pos, rot = self.arm.link_pose(self.arm.hand)
        return pos + rot[:, 2] * TCP_OFFSET

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        pos, q = self.p.getBasePositionAndOrientation(self._objects[name])
        return np.asarray(pos), np.array([q[3], q[0], q[1], q[2]])

    def object_velocity(self, name: str) -> np.ndarray:
        return np.asarray(self.p.getBaseVelocity(self._objects[name])[0])

    def touching(self, name: str, other: str) -> bool:
        body = self._objects[name]
        if other == GRIPPER:
            contacts = self.p.getContactPoints(bodyA=body, bodyB=self.arm.body)
            return any(c[4] in self.arm.touch_links for c in contacts)
        target = self.table if other == TABLE else self._objects.get(other)
        if target is None:
            raise SimError(f"touching: unknown body '{other}'.")
        return len(self.p.getContactPoints(bodyA=body, bodyB=target)) > 0

    def drawer_state(self) -> tuple[float, float]:
        raise SimError("this scene has no drawer (the Drawer task is MuJoCo-only).")

    def _camera(self, camera: str):
        if camera == WRIST_CAMERA:
            return wrist_camera(*self.arm.link_pose(self.arm.hand))
        return self._cameras[camera]

    def _frame(self, camera: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        key = (camera, size)
        if key not in self._frames:
            self._frames[key] = self._renderer.render(self._camera(camera), size, self._light)
        return self._frames[key]

    def render(self, camera: str, size: int) -> np.ndarray:
        return self._frame(camera, size)[0]

    def render_depth(self, camera: str, size: int) -> np.ndarray:
        return self._frame(camera, size)[1]

    def camera_info(self, camera: str, size: int) -> dict[str, Any]:
        return self._renderer.info(self._camera(camera), size)

    def close(self) -> None:
        self.ik_solver.close()
        self.p.close()
