"""What a tabletop scene contains (compile time) and where everything is in one episode (reset time), as plain data.

Why plain data: a task describes its scene once and every backend (MuJoCo, PyBullet, Isaac Gym) builds the same
thing from it, so the tasks, their success tests and the experts are written once. Frames: the world origin is the
robot base on the table top; z = 0 is the table surface, x points away from the robot, y to its left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ember.sims.cameras import CameraSpec
from ember.sims.randomization import Lighting

TABLE_CENTER = (0.36, 0.0)
TABLE_HALF = (0.62, 0.6, 0.025)
"""Half extents (m) of the table top box; its top face is z = 0."""
WORKSPACE_LOW = np.array([0.25, -0.30, 0.0])
WORKSPACE_HIGH = np.array([0.70, 0.30, 0.35])
"""Box of end-effector targets the controller accepts; both robots reach every corner pointing down (checked
with IK: the Panda cannot reach much beyond x = 0.7 m at this height)."""
START_EE = np.array([0.40, 0.0, 0.30])
"""End-effector position at the start of every episode (the robot reaches it from its home pose by IK)."""
REGION_LOW = np.array([0.37, -0.22])
REGION_HIGH = np.array([0.63, 0.22])
"""Table area (x, y) where objects and goals are placed."""
CUBE_HALF = 0.02
"""Half edge (m) of the graspable cubes (cylinders: radius and half height)."""

CAMERAS: dict[str, CameraSpec] = {
    "front": CameraSpec("front", (1.15, 0.0, 0.55), (0.48, 0.0, 0.05), 45.0),
    "side": CameraSpec("side", (0.5, -0.85, 0.45), (0.5, 0.0, 0.05), 45.0),
    "top": CameraSpec("top", (0.5, 0.0, 1.0), (0.5, 0.0, 0.0), 40.0),
}
"""Fixed cameras; ``wrist`` (on the hand, looking down past the fingers) is added by each backend."""
WRIST_CAMERA = "wrist"
CAMERA_NAMES: tuple[str, ...] = (*CAMERAS, WRIST_CAMERA)
RENDER_CAMERA = CameraSpec("overview", (1.12, -0.62, 0.78), (0.45, 0.0, 0.1), 45.0)
WRIST_FOVY = 80.0


@dataclass(frozen=True)
class ObjectSpec:
    """A free rigid object. ``size``: box half extents (3,), cylinder (radius, half height), sphere (radius,)."""

    name: str
    shape: str
    size: tuple[float, ...]
    mass: float = 0.05
    friction: float = 1.0

    @property
    def half_height(self) -> float:
        """Height (m) of the centre above the table when the object rests upright."""
        return {"box": lambda s: s[2], "cylinder": lambda s: s[1], "sphere": lambda s: s[0]}[self.shape](
            self.size
        )


@dataclass(frozen=True)
class MarkerSpec:
    """A visual-only marker (goal pad, reach target) moved per episode; it touches nothing."""

    name: str
    shape: str
    size: tuple[float, ...]


@dataclass(frozen=True)
class DrawerSpec:
    """A cabinet with one drawer that slides toward the robot (-x) by up to ``travel`` metres."""

    travel: float = 0.16
    cabinet_half: tuple[float, float, float] = (0.12, 0.15, 0.06)
    handle: str = "box"
    """'box' (train) or 'cylinder' (heldout_object)."""
    handle_length: float = 0.06
    """How far (m) the handle sticks out of the drawer front, toward the robot."""
    handle_z: float = 0.085
    damping: float = 15.0
    """N s/m: the drawer moves smoothly and stays where it is released."""
    frictionloss: float = 1.5


@dataclass(frozen=True)
class SceneSpec:
    """Everything compiled into a scene. ``objects`` includes any distractors (named ``distractor_<i>``)."""

    objects: tuple[ObjectSpec, ...] = ()
    markers: tuple[MarkerSpec, ...] = ()
    drawer: DrawerSpec | None = None
    table_texture: str = "plain"


@dataclass
class Placement:
    """Where one object or marker is at reset: position (world), yaw (rad) and colour."""

    pos: np.ndarray
    yaw: float = 0.0
    rgba: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 1.0)


@dataclass
class Layout:
    """The initial state of one episode, drawn by a task; each backend applies it at reset."""

    objects: dict[str, Placement] = field(default_factory=dict)
    markers: dict[str, Placement] = field(default_factory=dict)
    drawer: Placement | None = None
    """Cabinet placement (pos = centre of its footprint on the table; rgba = drawer front colour)."""
    drawer_opening: float = 0.0
    lighting: Lighting | None = None
    cameras: dict[str, CameraSpec] = field(default_factory=dict)
    """Fixed cameras of this episode (jittered copies of :data:`CAMERAS`)."""


def drawer_handle_offset(drawer: DrawerSpec) -> np.ndarray:
    """Centre of the handle relative to the cabinet centre when the drawer is closed (world axes)."""
    return np.array([-drawer.cabinet_half[0] - drawer.handle_length / 2, 0.0, drawer.handle_z])
