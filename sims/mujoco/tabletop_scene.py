"""MuJoCo scene of a tabletop task: a robot from ``robots/`` at a table, with what a ``SceneSpec`` lists.

Everything that varies per episode (object poses and colours, marker positions, cabinet placement, lighting,
camera poses) is a runtime field of the compiled model or data, so one compiled model serves every episode of a
split. What a split changes structurally (object shapes, distractors, table texture) is compiled in.
"""

from __future__ import annotations

import mujoco
import numpy as np

from ember.robots import get_robot, robot_mjspec
from ember.sims.mujoco.materials import add_table_material
from ember.sims.mujoco.scene_spec import look_at_quat, new_scene_spec, wrist_quat
from ember.sims.randomization import LIGHTING_PRESETS
from ember.sims.tabletop.scene import (
    CAMERAS,
    RENDER_CAMERA,
    TABLE_CENTER,
    TABLE_HALF,
    WRIST_CAMERA,
    WRIST_FOVY,
    DrawerSpec,
    MarkerSpec,
    ObjectSpec,
    SceneSpec,
)

ROBOT_PREFIX = "robot/"
CABINET_BODY = "cabinet"
DRAWER_JOINT = "drawer_slide"
KEY_LIGHT = "key"
TABLE_GEOM = "table"
TABLE_RGBA = (0.72, 0.64, 0.52, 1.0)
CABINET_RGBA = (0.85, 0.85, 0.82, 1.0)
_GEOM_TYPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
}
_OBJECT_FRICTION_EXTRA = [0.005, 0.0001]


def _size3(shape: str, size: tuple[float, ...]) -> list[float]:
    return [*size, *([0.0] * (3 - len(size)))]


def _volume(obj: ObjectSpec) -> float:
    s = obj.size
    return {
        "box": lambda: 8 * s[0] * s[1] * s[2],
        "cylinder": lambda: np.pi * s[0] ** 2 * 2 * s[1],
        "sphere": lambda: 4 / 3 * np.pi * s[0] ** 3,
    }[obj.shape]()


def _add_table(spec: mujoco.MjSpec, texture: str) -> None:
    world = spec.worldbody
    material, rgba = add_table_material(spec, texture, TABLE_RGBA)
    centre = [TABLE_CENTER[0], TABLE_CENTER[1], -TABLE_HALF[2]]
    world.add_geom(
        name=TABLE_GEOM,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=list(TABLE_HALF),
        pos=centre,
        rgba=rgba,
        material=material,
        friction=[0.8, 0.005, 0.0001],
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
    for sx in (-1, 1):
        for sy in (-1, 1):
            xy = np.array(TABLE_CENTER) + np.array([sx, sy]) * (np.array(TABLE_HALF[:2]) - 0.05)
            world.add_geom(
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.03, 0.03, 0.36],
                pos=[xy[0], xy[1], -0.41],
                rgba=[0.45, 0.38, 0.3, 1],
                contype=0,
                conaffinity=0,
            )


def _add_object(spec: mujoco.MjSpec, obj: ObjectSpec) -> None:
    body = spec.worldbody.add_body(name=obj.name, pos=[0.5, 0.0, obj.half_height])
    body.add_freejoint(name=f"{obj.name}_joint")
    body.add_geom(
        name=obj.name,
        type=_GEOM_TYPES[obj.shape],
        size=_size3(obj.shape, obj.size),
        density=obj.mass / _volume(obj),
        friction=[obj.friction, *_OBJECT_FRICTION_EXTRA],
        condim=4,
        rgba=[0.5, 0.5, 0.5, 1],
    )


def _add_marker(spec: mujoco.MjSpec, marker: MarkerSpec) -> None:
    body = spec.worldbody.add_body(name=marker.name, mocap=True, pos=[0.5, 0.0, 0.1])
    body.add_geom(
        name=marker.name,
        type=_GEOM_TYPES[marker.shape],
        size=_size3(marker.shape, marker.size),
        contype=0,
        conaffinity=0,
        rgba=[0.5, 0.5, 0.5, 1],
    )


def _add_drawer(spec: mujoco.MjSpec, drawer: DrawerSpec) -> None:
    """A cabinet (visual shell, moved per episode through ``model.body_pos``) with a sliding drawer inside."""
    hx, hy, hz = drawer.cabinet_half
    wall = 0.01
    cab = spec.worldbody.add_body(name=CABINET_BODY, pos=[0.66, 0.0, 0.0])
    shell = dict(type=mujoco.mjtGeom.mjGEOM_BOX, rgba=list(CABINET_RGBA), contype=0, conaffinity=0)
    cab.add_geom(name="cabinet_top", size=[hx, hy, wall], pos=[0, 0, 2 * hz - wall], **shell)
    cab.add_geom(name="cabinet_back", size=[wall, hy, hz], pos=[hx - wall, 0, hz], **shell)
    for side in (-1, 1):
        cab.add_geom(size=[hx, wall, hz], pos=[0, side * (hy - wall), hz], **shell)
    inner_hy = hy - 2 * wall
    box = cab.add_body(name="drawer", pos=[0, 0, 0])
    box.add_joint(
        name=DRAWER_JOINT,
        type=mujoco.mjtJoint.mjJNT_SLIDE,
        axis=[-1, 0, 0],
        range=[0, drawer.travel],
        damping=drawer.damping,
        frictionloss=drawer.frictionloss,
        armature=0.5,
    )
    front_z = 2 * hz - 2 * wall
    box.add_geom(
        name="drawer_front",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[wall, inner_hy, front_z / 2],
        pos=[-hx + wall, 0, front_z / 2],
        mass=0.3,
        rgba=[0.5, 0.5, 0.5, 1],
    )
    box.add_geom(
        name="drawer_bottom",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[hx - 2 * wall, inner_hy, wall / 2],
        pos=[0, 0, wall],
        mass=0.2,
        rgba=list(CABINET_RGBA),
        contype=0,
        conaffinity=0,
    )
    for side in (-1, 1):
        box.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[hx - 2 * wall, wall / 2, 0.03],
            pos=[0, side * (inner_hy - wall / 2), 0.03],
            mass=0.05,
            rgba=list(CABINET_RGBA),
            contype=0,
            conaffinity=0,
        )
    handle_x = -hx - drawer.handle_length / 2 + 0.005
    if drawer.handle == "cylinder":  # heldout_object: a round bar
        box.add_geom(
            name="drawer_handle",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[0.009, drawer.handle_length / 2 + 0.005, 0],
            pos=[handle_x, 0, drawer.handle_z],
            quat=[np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0],
            mass=0.05,
            rgba=[0.3, 0.3, 0.32, 1],
            friction=[1.0, 0.005, 0.0001],
            condim=4,
        )
    else:
        box.add_geom(
            name="drawer_handle",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[drawer.handle_length / 2 + 0.005, 0.009, 0.012],
            pos=[handle_x, 0, drawer.handle_z],
            mass=0.05,
            rgba=[0.3, 0.3, 0.32, 1],
            friction=[1.0, 0.005, 0.0001],
            condim=4,
        )


def build_tabletop_spec(robot: str, scene: SceneSpec, offscreen_size: int = 640) -> mujoco.MjSpec:
    """The scene as an editable spec (the robot attached at the world origin, names prefixed ``robot/``)."""
    robot_spec = robot_mjspec(robot)
    ee_body = robot_spec.site(get_robot(robot).ee_site).parent
    ee_body.add_camera(name=WRIST_CAMERA, pos=[0.07, 0.0, 0.0], quat=wrist_quat(), fovy=WRIST_FOVY)
    for key in list(
        robot_spec.keys
    ):  # the env sets the initial state; the arm's keyframe would not fit the scene
        robot_spec.delete(key)

    spec = new_scene_spec(f"ember_tabletop_{robot}", robot_spec.option.timestep, offscreen_size)
    spec.option.cone = robot_spec.option.cone  # a child's <option> does not survive attach
    spec.option.impratio = robot_spec.option.impratio
    light = LIGHTING_PRESETS["default"]
    spec.worldbody.add_light(
        name=KEY_LIGHT,
        pos=[0.9, -0.6, 1.6],
        dir=list(light.direction),
        diffuse=[light.diffuse] * 3,
        specular=[0.1, 0.1, 0.1],
        castshadow=False,
    )
    _add_table(spec, scene.table_texture)
    for obj in scene.objects:
        _add_object(spec, obj)
    for marker in scene.markers:
        _add_marker(spec, marker)
    if scene.drawer is not None:
        _add_drawer(spec, scene.drawer)
    for cam in (*CAMERAS.values(), RENDER_CAMERA):
        spec.worldbody.add_camera(
            name=cam.name, pos=list(cam.position), quat=look_at_quat(cam.position, cam.target), fovy=cam.fovy
        )
    spec.attach(robot_spec, frame=spec.worldbody.add_frame(pos=[0, 0, 0]), prefix=ROBOT_PREFIX)
    return spec
