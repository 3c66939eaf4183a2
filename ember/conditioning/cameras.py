"""Pinhole cameras for drawing world points into a policy's camera: intrinsics (3x3) and extrinsics (4x4).

Conventions are those of ``ember.sims.cameras`` and OpenCV: extrinsics map world -> camera, camera axes x right, y down,
z forward; pixel ``(u, v)`` has its origin at the top-left corner. A sim reports them per camera in
``info["cameras"]``; datasets recorded by ``ember collect`` do not store them, so :func:`dataset_camera` asks the
task's environment once (its fixed cameras do not move between episodes unless camera jitter is on) and caches
the answer in ``meta/ember_cameras.json`` next to the dataset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ember.conditioning.errors import ConditioningError

CAMERAS_FILE = "meta/ember_cameras.json"


@dataclass(frozen=True)
class CameraModel:
    """A camera's ``intrinsics`` (3x3, pixels) and ``extrinsics`` (4x4, world -> camera) at ``width x height``."""

    intrinsics: np.ndarray
    extrinsics: np.ndarray
    width: int
    height: int

    @classmethod
    def from_info(cls, info: dict[str, Any], width: int, height: int) -> CameraModel:
        """From a sim's ``info["cameras"][name]`` entry for images of ``width x height``."""
        try:
            k = np.asarray(info["intrinsics"], dtype=np.float64).reshape(3, 3)
            e = np.asarray(info["extrinsics"], dtype=np.float64).reshape(4, 4)
        except (KeyError, ValueError) as exc:
            raise ConditioningError(
                f"camera info needs a 3x3 'intrinsics' and a 4x4 'extrinsics'; got {info}"
            ) from exc
        return cls(k, e, int(width), int(height))

    def resized(self, width: int, height: int) -> CameraModel:
        """The same camera rendering ``width x height`` pixels (focal lengths and centre scale with the image)."""
        k = self.intrinsics.copy()
        k[0] *= width / self.width
        k[1] *= height / self.height
        return CameraModel(k, self.extrinsics, width, height)

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> pixel coordinates (N, 2) ``(u, v)``; points behind the camera are NaN."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        cam = p @ self.extrinsics[:3, :3].T + self.extrinsics[:3, 3]
        z = cam[:, 2:3]
        uv = (cam @ self.intrinsics.T)[:, :2] / np.where(z > 1e-6, z, np.nan)
        return uv

    def to_json(self) -> dict[str, Any]:
        return {
            "intrinsics": self.intrinsics.tolist(),
            "extrinsics": self.extrinsics.tolist(),
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CameraModel:
        return cls(
            np.asarray(data["intrinsics"], float),
            np.asarray(data["extrinsics"], float),
            int(data["width"]),
            int(data["height"]),
        )


def camera_from_env(
    task: str,
    backend: str,
    camera: str,
    image_size: int,
    env_kwargs: dict[str, Any] | None = None,
) -> CameraModel:
    """Asks the task's environment (reset once, seed 0) for ``camera``'s intrinsics and extrinsics."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless, as the CLI sets it; read when mujoco is imported
    from ember.sims import make_env

    kwargs = {
        "obs_mode": "pixels",
        "cameras": (camera,),
        "image_size": image_size,
        "render_mode": None,
        **(env_kwargs or {}),
    }
    env = make_env(task, backend=backend, **kwargs)
    try:
        _, info = env.reset(seed=0)
    finally:
        env.close()
    cameras = info.get("cameras") or {}
    if camera not in cameras:
        raise ConditioningError(
            f"the {task} environment reports no intrinsics/extrinsics for camera '{camera}' in info['cameras'] "
            f"(it reports {sorted(cameras)}); trajectory sketches and keypoints need them"
        )
    return CameraModel.from_info(cameras[camera], image_size, image_size)


def dataset_camera(root: str | Path, camera_key: str, image_hw: tuple[int, int]) -> CameraModel:
    """The camera behind ``camera_key`` (``observation.images.<cam>``) of a dataset recorded in simulation.

    Read from ``meta/ember_cameras.json`` when present; otherwise asked of the environment named by the dataset's
    ``meta/ember_collect_config.json`` (task, backend, split) and written there for next time.
    """
    root = Path(root)
    name = camera_key.split(".", 2)[-1]
    cache = root / CAMERAS_FILE
    if cache.is_file():
        data = json.loads(cache.read_text())
        if name in data:
            return CameraModel.from_json(data[name]).resized(image_hw[1], image_hw[0])
    collect = root / "meta" / "ember_collect_config.json"
    if not collect.is_file():
        raise ConditioningError(
            f"no camera geometry for {camera_key!r} in {root}: write {CAMERAS_FILE} as "
            '{"<camera>": {"intrinsics": 3x3, "extrinsics": 4x4, "width": W, "height": H}} '
            "or record the dataset with `ember collect` (its config names the environment to ask)"
        )
    cfg = json.loads(collect.read_text())
    env_kwargs = {"split": cfg.get("split", "train")}
    model = camera_from_env(cfg["task"], cfg.get("backend", "mujoco"), name, int(image_hw[0]), env_kwargs)
    data = json.loads(cache.read_text()) if cache.is_file() else {}
    data[name] = model.to_json()
    try:
        cache.write_text(json.dumps(data, indent=1) + "\n")
    except OSError:
        pass  # a read-only dataset still works, it just asks the environment again next time
    return model


def write_dataset_cameras(root: str | Path, cameras: dict[str, CameraModel]) -> Path:
    """Record camera geometry in ``meta/ember_cameras.json`` (merged with what is there; written atomically), so
    sketches and trajectories of the dataset are drawn without asking a simulator (a real recording has none)."""
    from ember.data.atomic import write_json_atomic

    path = Path(root) / CAMERAS_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update({name: model.to_json() for name, model in cameras.items()})
    write_json_atomic(path, data)
    return path


def camera_from_pose(ros_k: Any, width: int, height: int, pose: Any) -> CameraModel:
    """A real camera from its ROS ``CameraInfo.k`` (pixel centres at integers, as OpenCV) and its calibrated pose
    ``[x, y, z, qw, qx, qy, qz]``: the optical frame (x right, y down, z forward) in the robot base frame.

    The intrinsics are stored in this module's convention (pixel origin at the top-left corner, as the sims
    report them), i.e. the principal point moves by half a pixel."""
    k = np.asarray(ros_k, dtype=np.float64).reshape(3, 3).copy()
    k[0, 2] += 0.5
    k[1, 2] += 0.5
    p = np.asarray(pose, dtype=np.float64).reshape(-1)
    if p.shape != (7,) or not np.all(np.isfinite(p)) or np.linalg.norm(p[3:]) < 1e-9:
        raise ConditioningError(
            f"a camera pose is [x, y, z, qw, qx, qy, qz] (base frame), got {np.asarray(pose).tolist()}"
        )
    w, x, y, z = p[3:] / np.linalg.norm(p[3:])
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )  # camera -> world
    ext = np.eye(4)
    ext[:3, :3] = rot.T
    ext[:3, 3] = -rot.T @ p[:3]
    return CameraModel(k, ext, int(width), int(height))
