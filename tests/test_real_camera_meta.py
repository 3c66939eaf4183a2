"""A ROS recording carries its cameras' geometry: the recorder writes intrinsics (from camera_info) and extrinsics
(from a calibrated pose parameter) into meta/ember_cameras.json, so sketches are drawn without a simulator. Against
the mock arm hosting a sim task, the recorded geometry is the sim camera's own."""

from __future__ import annotations

import json
import os

import mujoco
import numpy as np
import pytest
from std_msgs.msg import String

from ember.conditioning.cameras import camera_from_pose, dataset_camera
from ember.conditioning.errors import ConditioningError
from ember.real import ros
from ember.real.recorder_params import RecorderConfig
from ember.real.testing.processes import Probe, ros_env, start_node
from ember.sims.tabletop.env import TabletopEnv

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
pytestmark = pytest.mark.timeout(240)


def sim_front_camera(size: int = 64) -> tuple[dict, list[float]]:
    env = TabletopEnv(
        "Lift", backend="mujoco", obs_mode="pixels", cameras=("front",), image_size=size, render_mode=None
    )
    try:
        _, info = env.reset(seed=0)
    finally:
        env.close()
    cam = info["cameras"]["front"]
    ext = np.asarray(cam["extrinsics"], float)
    rot = ext[:3, :3].T  # camera -> world
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.ravel())
    return cam, [*(-rot @ ext[:3, 3]).tolist(), *quat.tolist()]


def test_camera_from_pose_inverts_a_known_pose():
    cam, pose = sim_front_camera()
    k_ros = np.asarray(cam["intrinsics"], float) - np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])
    model = camera_from_pose(k_ros.ravel(), 64, 64, pose)
    np.testing.assert_allclose(model.intrinsics, cam["intrinsics"], atol=1e-5)
    np.testing.assert_allclose(model.extrinsics, cam["extrinsics"], atol=1e-5)
    with pytest.raises(ConditioningError, match="qw"):
        camera_from_pose(k_ros.ravel(), 64, 64, [0, 0, 1])
    with pytest.raises(ValueError, match="x y z qw qx qy qz"):
        RecorderConfig(root="x", camera_poses=("front 1 2 3",))
    with pytest.raises(ValueError, match="not in cameras"):
        RecorderConfig(root="x", camera_poses=("side 0 0 1 1 0 0 0",))


def test_recorder_writes_the_sim_cameras_geometry(tmp_path):
    cam, pose = sim_front_camera()
    env = ros_env()
    root = tmp_path / "rec"
    nodes = [
        start_node(
            "mock_arm",
            {"task": "Lift", "cameras": ["front"], "image_width": 64, "image_height": 64},
            env,
            tmp_path,
        ),
        start_node(
            "recorder",
            {
                "root": str(root),
                "fps": 10,
                "cameras": ["front"],
                "episode_duration_s": 1.0,
                "num_episodes": 1,
                "task": "lift the cube",
                "camera_poses": ["front " + " ".join(f"{v:.9f}" for v in pose)],
            },
            env,
            tmp_path,
        ),
    ]
    probe = Probe(domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        probe.subscribe("/ember/recorder/status", String, ros.qos_latched())
        probe.wait_for(
            lambda: (root / "meta" / "ember_cameras.json").is_file(),
            90,
            "the camera file\n" + "\n".join(n.output()[-2000:] for n in nodes),
        )
    finally:
        probe.close()
        for n in nodes:
            n.stop()
    data = json.loads((root / "meta" / "ember_cameras.json").read_text())
    np.testing.assert_allclose(data["front"]["intrinsics"], cam["intrinsics"], atol=1e-4)
    np.testing.assert_allclose(data["front"]["extrinsics"], cam["extrinsics"], atol=1e-5)
    model = dataset_camera(root, "observation.images.front", (64, 64))  # no simulator asked
    np.testing.assert_allclose(
        model.project(np.array([[0.5, 0.0, 0.05]])), model.project(np.array([[0.5, 0.0, 0.05]]))
    )
    assert np.all(np.isfinite(model.project(np.array([[0.5, 0.0, 0.05]]))))
