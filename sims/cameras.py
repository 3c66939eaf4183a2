"""Camera geometry shared by every backend: placement, jitter, pinhole intrinsics and OpenCV extrinsics.

Why one module: the intrinsics and extrinsics a policy (or a point-cloud builder) sees must mean the same thing
whichever simulator rendered the image. Conventions, as in OpenCV and open3d:

* ``intrinsics``: 3x3 ``K`` with ``fx = fy = (height / 2) / tan(fovy / 2)`` and the principal point at the image
  centre ``(width / 2, height / 2)`` (pixel centres at half-integers);
* ``extrinsics``: 4x4 world -> camera transform; camera axes x right, y down, z forward (into the scene).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_DEPTH = 5.0
"""Depth images are clipped to this range (m); farther is background (both backends render to it)."""


@dataclass(frozen=True)
class CameraSpec:
    """A fixed camera: where it is, what it looks at, and its vertical field of view (degrees); world frame."""

    name: str
    position: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy: float


def look_at_rotation(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """3x3 camera-to-world rotation in OpenCV axes (z toward ``target``, image up toward world +z)."""
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:  # looking straight down: image up = world +x (away from the robot)
        right = np.array([0.0, -1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.column_stack([right, down, forward])


def jittered(
    cam: CameraSpec, pos_jitter: float, rot_jitter_deg: float, rng: np.random.Generator
) -> CameraSpec:
    """``cam`` moved by up to ``pos_jitter`` m per axis, its look-at point swung by up to ``rot_jitter_deg``."""
    if pos_jitter <= 0 and rot_jitter_deg <= 0:
        return cam
    pos = np.asarray(cam.position) + rng.uniform(-pos_jitter, pos_jitter, 3)
    target = np.asarray(cam.target, float)
    dist = float(np.linalg.norm(target - pos))
    target = target + rng.uniform(-1.0, 1.0, 3) * dist * math.tan(math.radians(rot_jitter_deg))
    return CameraSpec(cam.name, tuple(pos.tolist()), tuple(target.tolist()), cam.fovy)


def intrinsics(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """Pinhole ``K`` of a camera with vertical field of view ``fovy_deg`` rendering ``width`` x ``height``."""
    f = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def extrinsics(rotation_cam_to_world: np.ndarray, position: np.ndarray) -> np.ndarray:
    """4x4 world -> camera transform from an OpenCV camera-to-world rotation and the camera position."""
    out = np.eye(4)
    out[:3, :3] = rotation_cam_to_world.T
    out[:3, 3] = -rotation_cam_to_world.T @ np.asarray(position, float)
    return out


def camera_info(fovy_deg: float, width: int, height: int, rotation: np.ndarray, position: np.ndarray) -> dict:
    """The ``info["cameras"][name]`` entry: float32 ``intrinsics`` (3x3) and ``extrinsics`` (4x4, world -> camera)."""
    return {
        "intrinsics": intrinsics(fovy_deg, width, height).astype(np.float32),
        "extrinsics": extrinsics(rotation, position).astype(np.float32),
    }


WRIST_MOUNT = (0.07, 0.0, 0.0)
"""Wrist camera position in the end-effector body's frame (m): beside the hand, like a real wrist camera."""
WRIST_TILT_DEG = 30.0


def wrist_rotation(tilt_deg: float = WRIST_TILT_DEG) -> np.ndarray:
    """OpenCV camera-to-hand rotation of the wrist camera: looking down the hand's +z (the approach direction),
    tilted toward the hand's +x. The MuJoCo scenes mount the same camera (``ember.sims.mujoco.scene_spec.wrist_quat``)."""
    t = math.radians(tilt_deg)
    view = np.array([math.sin(t), 0.0, math.cos(t)])
    up = np.array([math.cos(t), 0.0, -math.sin(t)])
    right = np.cross(view, up)
    return np.column_stack([right, -up, view])
