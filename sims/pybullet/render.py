"""PyBullet cameras: the same placements, intrinsics and extrinsics as MuJoCo's (:mod:`ember.sims.cameras`).

Rendering uses PyBullet's CPU TinyRenderer (no GL context needed; shadows off), and returns depth converted from
the normalized depth buffer to metres along the optical axis, like MuJoCo's depth images.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ember.sims.cameras import (
    MAX_DEPTH,
    WRIST_MOUNT,
    CameraSpec,
    camera_info,
    look_at_rotation,
    wrist_rotation,
)
from ember.sims.randomization import Lighting
from ember.sims.tabletop.scene import WRIST_FOVY

NEAR, FAR = 0.01, MAX_DEPTH


@dataclass(frozen=True)
class CameraPose:
    position: np.ndarray
    rotation: np.ndarray
    """OpenCV camera-to-world rotation."""
    fovy: float


def camera_pose(cam: CameraSpec | CameraPose) -> CameraPose:
    if isinstance(cam, CameraPose):
        return cam
    return CameraPose(
        np.asarray(cam.position, float),
        look_at_rotation(np.asarray(cam.position), np.asarray(cam.target)),
        cam.fovy,
    )


def wrist_camera(hand_pos: np.ndarray, hand_rot: np.ndarray) -> CameraPose:
    """The wrist camera for a hand at ``hand_pos`` with rotation ``hand_rot`` (same mount as on MuJoCo)."""
    return CameraPose(hand_pos + hand_rot @ np.asarray(WRIST_MOUNT), hand_rot @ wrist_rotation(), WRIST_FOVY)


@lru_cache(maxsize=1)
def checker_texture() -> str:
    """Path of the heldout_scene table texture (a PNG written once per process)."""
    from PIL import Image

    cells = (np.indices((32, 32)).sum(axis=0) % 2).astype(bool)
    img = np.where(cells[..., None], [158, 168, 179], [89, 107, 128]).astype(np.uint8)
    img = np.kron(img, np.ones((4, 4, 1), dtype=np.uint8))
    path = Path(tempfile.mkdtemp(prefix="ember_tex_")) / "checker.png"
    Image.fromarray(img).save(path)
    return str(path)


class BulletCamera:
    """Renders CameraSpecs/CameraPoses of one PyBullet client."""

    def __init__(self, client: Any) -> None:
        self.p = client

    def render(
        self, cam: CameraSpec | CameraPose, size: int, light: Lighting | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (size, size, 3) RGB and float32 (size, size) depth in metres."""
        pose = camera_pose(cam)
        gl = pose.rotation @ np.diag([1.0, -1.0, -1.0])  # OpenCV -> OpenGL camera axes
        view = np.eye(4)
        view[:3, :3] = gl.T
        view[:3, 3] = -gl.T @ pose.position
        proj = self.p.computeProjectionMatrixFOV(fov=pose.fovy, aspect=1.0, nearVal=NEAR, farVal=FAR)
        kwargs: dict[str, Any] = {
            "shadow": 0,
            "lightAmbientCoeff": 0.6,
            "lightDiffuseCoeff": 0.4,
            "lightSpecularCoeff": 0.02,
        }
        if light is not None:
            kwargs["lightDirection"] = (-np.asarray(light.direction)).tolist()
            kwargs["lightDiffuseCoeff"] = 0.35 + light.diffuse * 0.5
        _, _, rgba, depth_buf, _ = self.p.getCameraImage(
            size,
            size,
            viewMatrix=view.T.flatten().tolist(),
            projectionMatrix=proj,
            renderer=self.p.ER_TINY_RENDERER,
            flags=self.p.ER_NO_SEGMENTATION_MASK,
            **kwargs,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[..., :3].copy()
        d = np.asarray(depth_buf, dtype=np.float64).reshape(size, size)
        depth = FAR * NEAR / (FAR - (FAR - NEAR) * d)
        return rgb, depth.astype(np.float32)

    def info(self, cam: CameraSpec | CameraPose, size: int) -> dict[str, Any]:
        pose = camera_pose(cam)
        return camera_info(pose.fovy, size, size, pose.rotation, pose.position)
