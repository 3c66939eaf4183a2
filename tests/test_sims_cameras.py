"""Camera geometry means the same on every backend: intrinsics/extrinsics project scene points onto the pixels that
show them, depth is metric, and point clouds (open3d) land on the objects."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from ember.sims import make_env  # noqa: E402
from ember.sims.pointcloud import depth_to_points  # noqa: E402

SIZE = 128


@pytest.fixture(scope="module", params=["mujoco", "pybullet"])
def scene(request):
    env = make_env(
        "PickPlace",
        backend=request.param,
        obs_mode="pixels",
        cameras=("top", "front", "side"),
        image_size=SIZE,
        depth=True,
        point_cloud=2048,
        render_mode=None,
    )
    obs, info = env.reset(seed=5)
    yield env.unwrapped, obs, info
    env.close()


def project(info_cam: dict, point: np.ndarray) -> tuple[np.ndarray, float]:
    cam = info_cam["extrinsics"] @ np.r_[point, 1.0]
    uv = (info_cam["intrinsics"] @ cam[:3])[:2] / cam[2]
    return uv, float(cam[2])


@pytest.mark.parametrize("camera", ["top", "front", "side"])
def test_intrinsics_and_extrinsics_project_objects_onto_their_pixels(scene, camera):
    env, obs, info = scene
    for name, place in env.episode.layout.objects.items():
        top = env.world.object_pose(name)[0] + [0.0, 0.0, 0.019]  # just below the top face's centre
        (u, v), z = project(info["cameras"][camera], top)
        col, row = int(u), int(v)  # pixel (col, row) covers [col, col + 1) x [row, row + 1)
        assert 0 <= col < SIZE and 0 <= row < SIZE, (name, u, v)
        rgb = obs[f"observation.images.{camera}"][row, col].astype(float) / 255.0
        want = np.asarray(place.rgba[:3])
        assert np.argmax(rgb) == np.argmax(want) or np.abs(rgb - want).max() < 0.35, (name, rgb, want)
        depth = float(obs[f"observation.depth.{camera}"][row, col, 0])
        assert depth == pytest.approx(z, abs=0.02), name


def test_depth_back_projects_onto_the_table_plane(scene):
    env, obs, info = scene
    cam = info["cameras"]["top"]
    points = depth_to_points(obs["observation.depth.top"], cam["intrinsics"], cam["extrinsics"])
    near_table = points[
        (np.abs(points[:, 0] - 0.5) < 0.3) & (np.abs(points[:, 1]) < 0.3) & (points[:, 2] < 0.01)
    ]
    # Most of the view is bare table top (z = 0); the rest are pads (1.6 mm) and the feet of the cubes.
    assert len(near_table) > 1000 and np.percentile(np.abs(near_table[:, 2]), 90) < 0.002


def test_point_cloud_covers_the_objects(scene):
    env, obs, _ = scene
    cloud = obs["observation.point_cloud"]
    assert cloud.shape == (2048, 6)
    for name in env.episode.layout.objects:
        centre = env.world.object_pose(name)[0]
        near = np.linalg.norm(cloud[:, :3] - centre, axis=1) < 0.03
        assert near.sum() >= 3, name
