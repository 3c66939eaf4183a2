"""The mock arm's world: the robot from ``robots/`` on a floor, a table top in front, a cube, fixed cameras.

Deliberately plain (no textures, no shadows): it exists to give the ROS stack realistic joint dynamics and
camera images, not to be a task. The robot is attached with a name prefix; ``ROBOT_PREFIX + joint`` names the
robot's joints in the scene model, while every ROS message uses the robot spec's own names.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ember.real.robot import robot_mjspec

ROBOT_PREFIX = "robot/"
CAMERAS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    # name: (position, look-at point, vertical field of view in degrees), robot base frame
    "front": ((1.7, 0.0, 1.0), (0.30, 0.0, 0.30), 45.0),
    "side": ((0.4, -1.7, 0.9), (0.35, 0.0, 0.30), 45.0),
    "top": ((0.55, 0.0, 1.8), (0.55, 0.0, 0.0), 40.0),
}


def look_at_quat(pos: tuple[float, float, float], target: tuple[float, float, float]) -> list[float]:
    """wxyz of a MuJoCo camera at ``pos`` looking at ``target``, image up toward world +z (or +x from above)."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:
        right = np.array([0.0, -1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([right, up, -forward]).ravel())
    return quat.tolist()


def build_scene(robot: str, offscreen: tuple[int, int] = (640, 480)) -> mujoco.MjSpec:
    """The scene spec (compile it with ``.compile()``); ``offscreen`` is the largest render size (w, h)."""
    spec = mujoco.MjSpec()
    spec.modelname = "ember_mock_arm"
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.visual.global_.offwidth = max(offscreen[0], 64)
    spec.visual.global_.offheight = max(offscreen[1], 64)
    spec.visual.headlight.ambient = [0.3, 0.3, 0.3]
    spec.visual.headlight.diffuse = [0.4, 0.4, 0.4]
    world = spec.worldbody
    world.add_light(
        name="key", pos=[0.6, -0.4, 2.0], dir=[-0.1, 0.2, -1.0], diffuse=[0.5, 0.5, 0.5], castshadow=False
    )
    world.add_geom(
        name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.05], rgba=[0.55, 0.57, 0.6, 1]
    )
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.3, 0.4, 0.005],
        pos=[0.55, 0, 0.005],
        rgba=[0.8, 0.72, 0.6, 1],
    )
    cube = world.add_body(name="cube", pos=[0.55, 0.12, 0.035])
    cube.add_freejoint(name="cube_joint")
    cube.add_geom(
        name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.025] * 3, rgba=[0.85, 0.2, 0.2, 1], density=500.0
    )
    for name, (pos, target, fovy) in CAMERAS.items():
        world.add_camera(name=name, pos=list(pos), quat=look_at_quat(pos, target), fovy=fovy)

    arm = robot_mjspec(robot)
    for key in list(
        arm.keys
    ):  # the scene has more DOF (the cube); the mock arm sets the initial state itself
        arm.delete(key)
    spec.attach(arm, frame=world.add_frame(pos=[0, 0, 0]), prefix=ROBOT_PREFIX)
    return spec
