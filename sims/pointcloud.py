"""Point clouds from depth images, built with open3d (imported lazily: only point-cloud users pay its ~2 s import).

Depth images are float32 metres along the camera's optical axis (what MuJoCo and our PyBullet conversion return);
``intrinsics``/``extrinsics`` follow :mod:`ember.sims.cameras` (OpenCV axes, world -> camera).
"""

from __future__ import annotations

import numpy as np


def _open3d_intrinsic(o3d, w: int, h: int, k: np.ndarray):
    """Open3D back-projects pixel ``(u, v)`` from its integer index (pixel centres at integers, as OpenCV and ROS
    ``CameraInfo``); :mod:`ember.sims.cameras` puts pixel centres at half-integers (principal point ``w / 2``), so the
    principal point moves by half a pixel here, or every point would be off by half a pixel."""
    return o3d.camera.PinholeCameraIntrinsic(w, h, k[0, 0], k[1, 1], k[0, 2] - 0.5, k[1, 2] - 0.5)


def depth_to_points(
    depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray, max_depth: float = 3.0
) -> np.ndarray:
    """World-frame points (N, 3) of every pixel with depth in (0, ``max_depth``)."""
    import open3d as o3d

    depth = np.ascontiguousarray(np.asarray(depth, dtype=np.float32).squeeze())
    h, w = depth.shape
    k = np.asarray(intrinsics, dtype=float)
    intr = _open3d_intrinsic(o3d, w, h, k)
    cloud = o3d.geometry.PointCloud.create_from_depth_image(
        o3d.geometry.Image(depth),
        intr,
        np.asarray(extrinsics, dtype=float),
        depth_scale=1.0,
        depth_trunc=max_depth,
    )
    return np.asarray(cloud.points)


def rgbd_to_points(
    rgb: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray, max_depth: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """World-frame points (N, 3) and their colours (N, 3, in [0, 1]) from an RGB-D pair."""
    import open3d as o3d

    depth = np.ascontiguousarray(np.asarray(depth, dtype=np.float32).squeeze())
    h, w = depth.shape
    k = np.asarray(intrinsics, dtype=float)
    intr = _open3d_intrinsic(o3d, w, h, k)
    rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
        o3d.geometry.Image(np.ascontiguousarray(rgb, dtype=np.uint8)),
        o3d.geometry.Image(depth),
        depth_scale=1.0,
        depth_trunc=max_depth,
        convert_rgb_to_intensity=False,
    )
    cloud = o3d.geometry.PointCloud.create_from_rgbd_image(rgbd, intr, np.asarray(extrinsics, dtype=float))
    return np.asarray(cloud.points), np.asarray(cloud.colors)


def fixed_size(
    points: np.ndarray,
    colors: np.ndarray,
    n: int,
    bounds_low: np.ndarray,
    bounds_high: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exactly ``n`` rows of ``[x, y, z, r, g, b]`` (float32) inside the box ``[bounds_low, bounds_high]``.

    Gymnasium observations need a fixed shape: the cloud is cropped to the workspace, then sampled without
    replacement (or padded by repeating points when it has fewer than ``n``). An empty crop gives zeros.
    """
    inside = np.all((points >= bounds_low) & (points <= bounds_high), axis=1)
    pts = np.concatenate([points[inside], colors[inside]], axis=1)
    if len(pts) == 0:
        return np.zeros((n, 6), dtype=np.float32)
    # open3d back-projects in parallel, so the order of its points varies between runs; sort, so that the same
    # seed draws the same points.
    pts = pts[np.lexsort(pts[:, 2::-1].T)]
    idx = rng.choice(len(pts), size=n, replace=len(pts) < n)
    return pts[idx].astype(np.float32)
