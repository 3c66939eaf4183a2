"""The 3-D PushT scene: a Panda at a table, a T-shaped block, a painted target T and a few cameras.

Frames: the world origin is the robot base on the table top (z = 0 is the table surface). The *table frame* of
the task is the world translated to ``TABLE_ORIGIN`` (axes unchanged): x points away from the robot, y to its left.
Every planar quantity the env exposes (actions, pusher, block and goal poses) is in the table frame.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ember.robots.panda import FINGER_BODIES, HAND_BODY, TCP_OFFSET, panda_mjspec
from ember.sims.mujoco.materials import add_table_material
from ember.sims.mujoco.scene_spec import look_at_quat, new_scene_spec, wrist_quat
from ember.sims.tshape import TShape

TABLE_ORIGIN = np.array([0.48, 0.0])
"""Where the table frame's origin lies in the world (x, y), metres: the centre of the pushing workspace."""
BLOCK_HEIGHT = 0.03
BLOCK_DENSITY = 600.0  # kg/m^3, hardwood: a 16 cm T weighs 0.2 kg
BLOCK_FRICTION = 0.5  # wood on a laminate table top
PUSHER_RADIUS = 0.0125
PUSHER_LENGTH = 0.10
"""The pusher is a rod held in the closed fingers, reaching this far (m) below the fingertips, as in real-robot
PushT setups: the hand stays high enough that cameras see the block under it."""
PUSHER_SITE = "pusher_tip"
PUSHER_FRICTION = 0.2  # a smooth tool tip on wood; takes precedence over the block's (geom priority)
PUSH_HEIGHT = 0.008
"""Height (m) of the pusher's bottom (``pusher_tip``) above the table: it slides just above the surface."""

TABLE_RGBA = (0.72, 0.64, 0.52, 1.0)
BLOCK_RGBA = (0.47, 0.53, 0.60, 1.0)  # light slate grey, as in the 2-D PushT
GOAL_RGBA = (0.30, 0.80, 0.40, 1.0)  # light green
PUSHER_RGBA = (0.15, 0.15, 0.18, 1.0)

# Collision bits: the block touches the table and the pusher; the pusher touches nothing else.
_TABLE_BITS, _PUSHER_BITS = 1, 2
_BLOCK_BITS = _TABLE_BITS | _PUSHER_BITS

CAMERAS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    # name: (position, look-at point, vertical field of view in degrees); world frame
    "front": ((0.98, 0.0, 0.50), (0.46, 0.0, 0.0), 50.0),
    "top": ((0.80, 0.0, 1.00), (0.46, 0.0, 0.0), 42.0),
    "side": ((0.46, -0.92, 0.52), (0.46, 0.0, 0.0), 45.0),
    "overview": ((1.40, -0.72, 1.05), (0.36, 0.0, 0.2), 45.0),
}
"""Fixed cameras; ``wrist`` (on the hand, looking down past the pusher) is added as well."""
CAMERA_NAMES: tuple[str, ...] = (*CAMERAS, "wrist")
RENDER_CAMERA = "overview"
ROBOT_PREFIX = "robot/"
"""Names of the attached robot's joints, actuators, sites and bodies in the scene start with this."""


def table_to_world(xy: np.ndarray, z: float = 0.0) -> np.ndarray:
    return np.array([xy[0] + TABLE_ORIGIN[0], xy[1] + TABLE_ORIGIN[1], z])


def _add_t_boxes(
    body: mujoco.MjsBody, tshape: TShape, prefix: str, half_z: float, z: float, **geom: object
) -> None:
    for name, (cx, cy, hx, hy) in zip(("bar", "stem"), tshape.rects, strict=True):
        body.add_geom(
            name=f"{prefix}_{name}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[hx, hy, half_z],
            pos=[cx, cy, z],
            **geom,
        )


def pusher_robot_spec() -> mujoco.MjSpec:
    """The Panda holding the pusher rod, with a ``pusher_tip`` site at the rod's bottom centre and a wrist camera.

    Compiled alone it is the IK model of the task (the robot base is the world origin in both).
    """
    robot = panda_mjspec()
    hand = robot.body(HAND_BODY)
    tip = TCP_OFFSET + PUSHER_LENGTH  # hand +z points down, toward the table
    hand.add_geom(
        name="pusher",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[PUSHER_RADIUS, PUSHER_LENGTH / 2 + 0.01, 0],
        pos=[0, 0, tip - PUSHER_LENGTH / 2 - 0.01],
        rgba=PUSHER_RGBA,
        contype=_PUSHER_BITS,
        conaffinity=_PUSHER_BITS,
        priority=1,
        friction=[PUSHER_FRICTION, 0.005, 0.0001],
        condim=3,
        mass=0.05,
        group=2,
    )
    hand.add_site(name=PUSHER_SITE, pos=[0, 0, tip], size=[0.004, 0, 0], group=4)
    hand.add_camera(name="wrist", pos=[0.07, 0.0, 0.0], quat=wrist_quat(), fovy=80.0)
    for geom in robot.geoms:  # the fingers hold the rod; only the rod touches the block
        if geom.parent.name in FINGER_BODIES:
            geom.contype = 0
            geom.conaffinity = 0
    for key in list(
        robot.keys
    ):  # the env sets the initial state itself; the arm's keyframe would not fit the scene
        robot.delete(key)
    return robot


DISTRACTOR_SLOTS: tuple[tuple[float, float], ...] = ((-0.15, 0.45), (0.2, -0.46), (0.35, 0.42))
"""Table-frame (x, y) of heldout_scene's distractors: on the table, outside the pusher's workspace."""


def build_pusht_spec(
    tshape: TShape,
    goal_pose: tuple[float, float, float],
    offscreen_size: int = 640,
    table_texture: str = "plain",
    distractors: int = 0,
) -> mujoco.MjSpec:
    """The scene as an editable spec (the robot with its pusher attached at the world origin).

    ``table_texture`` and ``distractors`` (visual-only clutter outside the workspace) vary only in heldout_scene;
    the defaults build the training scene.
    """
    robot = pusher_robot_spec()
    spec = new_scene_spec("ember_pusht", 0.002, offscreen_size)
    matte = spec.add_material(name="matte", specular=0.05, shininess=0.1)
    table_material, table_rgba = (
        (matte.name, list(TABLE_RGBA))
        if table_texture == "plain"
        else add_table_material(spec, table_texture, TABLE_RGBA)
    )
    world = spec.worldbody

    world.add_light(
        name="key",
        pos=[0.9, -0.6, 1.6],
        dir=[-0.3, 0.35, -1.0],
        diffuse=[0.5, 0.5, 0.5],
        specular=[0.1, 0.1, 0.1],
        castshadow=False,
    )
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[3, 3, 0.05],
        pos=[0, 0, -0.75],
        rgba=[0.55, 0.57, 0.6, 1],
        contype=0,
        conaffinity=0,
    )
    table_half = np.array([0.62, 0.6, 0.025])
    table_centre = np.array([0.36, 0.0, -table_half[2]])
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=table_half.tolist(),
        pos=table_centre.tolist(),
        rgba=table_rgba,
        material=table_material,
        contype=_TABLE_BITS,
        conaffinity=_TABLE_BITS,
        friction=[BLOCK_FRICTION, 0.005, 0.0001],
    )
    for sx in (-1, 1):
        for sy in (-1, 1):
            leg_xy = table_centre[:2] + np.array([sx, sy]) * (table_half[:2] - 0.05)
            world.add_geom(
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.03, 0.03, 0.36],
                pos=[leg_xy[0], leg_xy[1], -0.05 - 0.36],
                rgba=[0.45, 0.38, 0.3, 1],
                contype=0,
                conaffinity=0,
            )

    # The target: a flat painted T (visual only), on a mocap body so the goal pose can be moved without recompiling.
    goal = world.add_body(
        name="goal",
        mocap=True,
        pos=table_to_world(goal_pose[:2]).tolist(),
        quat=[np.cos(goal_pose[2] / 2), 0, 0, np.sin(goal_pose[2] / 2)],
    )
    _add_t_boxes(
        goal,
        tshape,
        "goal",
        0.0004,
        0.0005,
        rgba=GOAL_RGBA,
        material=matte.name,
        contype=0,
        conaffinity=0,
        group=0,
    )

    block = world.add_body(name="block", pos=[TABLE_ORIGIN[0], TABLE_ORIGIN[1] + 0.1, BLOCK_HEIGHT / 2])
    block.add_freejoint(name="block_joint")
    _add_t_boxes(
        block,
        tshape,
        "block",
        BLOCK_HEIGHT / 2,
        0.0,
        rgba=BLOCK_RGBA,
        contype=_BLOCK_BITS,
        conaffinity=_BLOCK_BITS,
        density=BLOCK_DENSITY,
        friction=[BLOCK_FRICTION, 0.005, 0.0001],
        condim=3,
    )

    for i in range(distractors):  # visual clutter only: it must not change the pushing physics
        x, y, _ = table_to_world(np.array(DISTRACTOR_SLOTS[i % len(DISTRACTOR_SLOTS)]))
        if i % 2 == 0:
            geom = dict(
                type=mujoco.mjtGeom.mjGEOM_SPHERE,
                size=[0.03, 0, 0],
                pos=[x, y, 0.03],
                rgba=[0.55, 0.55, 0.55, 1],
            )
        else:
            geom = dict(
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.025, 0.025, 0.04],
                pos=[x, y, 0.04],
                rgba=[0.45, 0.3, 0.18, 1],
            )
        world.add_geom(name=f"distractor_{i}", contype=0, conaffinity=0, **geom)

    for name, (pos, target, fovy) in CAMERAS.items():
        world.add_camera(name=name, pos=list(pos), quat=look_at_quat(pos, target), fovy=fovy)

    frame = world.add_frame(pos=[0, 0, 0])
    spec.attach(robot, frame=frame, prefix=ROBOT_PREFIX)
    return spec
