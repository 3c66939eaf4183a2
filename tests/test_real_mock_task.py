"""The mock arm hosting a sims task: the same scene, start pose, objects, cameras and success check as the sim env
that ``ember eval`` runs, seed by seed (ROS-free), and the episode topics over real DDS."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from ember.real import ros
from ember.real.mock_arm_logic import MockArmSim
from ember.real.mock_arm_params import MockArmConfig
from ember.real.testing.processes import Probe, ros_env, start_node
from ember.real.trajectory import TrajectoryPoint
from ember.sims.tabletop.env import TabletopEnv

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
pytestmark = pytest.mark.timeout(240)


def sim_env(task: str) -> TabletopEnv:
    return TabletopEnv(
        task,
        backend="mujoco",
        action_space_type="joint_pos",
        obs_mode="pixels",
        cameras=("front",),
        image_size=64,
        render_mode=None,
    )


def test_the_mock_arm_starts_each_seed_as_the_sim_env_does():
    arm = MockArmSim(
        MockArmConfig(task="PickPlace", cameras=("front",), image_width=64, image_height=64, seed=3)
    )
    env = sim_env("PickPlace")
    try:
        obs, info = env.reset(seed=3)
        np.testing.assert_allclose(arm.state()[0], obs["observation.state"], atol=1e-6)
        np.testing.assert_allclose(arm.snapshot()[0], env.world.data.qpos, atol=1e-9)  # objects too
        np.testing.assert_allclose(arm.snapshot()[1], env.world.data.mocap_pos, atol=1e-9)  # goal markers
        assert arm.task.instruction == info["task"]
        metrics = arm.evaluate()
        assert metrics["is_success"] is False and metrics["goal_error"] == pytest.approx(info["goal_error"])
        assert arm.task.camera_fovy("front") == pytest.approx(
            float(env.world.model.cam_fovy[env.world.camera_id("front")])
        )
        # another seed: another layout, the same one the env gives it
        arm.reset_episode(7)
        env.reset(seed=7)
        np.testing.assert_allclose(arm.snapshot()[0], env.world.data.qpos, atol=1e-9)
        # the arm follows commands in the task scene
        q0 = arm.state()[0]
        target = q0.copy()
        target[0] += 0.2
        now = time.monotonic()
        arm.sim_start, arm.steps = now, 0
        assert arm.command(list(arm.names), [TrajectoryPoint(0.5, target.tolist())], now) is None
        for k in range(
            1, 101
        ):  # as the physics thread does: 10 ms at a time (a long gap counts as an overrun)
            arm.advance(now + 0.01 * k)
        assert arm.overruns == 0
        assert arm.state()[0][0] == pytest.approx(target[0], abs=0.02)
    finally:
        env.close()
        arm.task.close()


def test_mock_arm_node_runs_episodes_over_ros(tmp_path):
    env_vars = ros_env()
    node = start_node(
        "mock_arm",
        {"task": "Lift", "cameras": ["front"], "image_width": 64, "image_height": 64, "seed": 2},
        env_vars,
        tmp_path,
    )
    probe = Probe(domain_id=int(env_vars["ROS_DOMAIN_ID"]))
    env = sim_env("Lift")
    try:
        probe.subscribe("/mock_arm/task", String, ros.qos_latched())
        probe.subscribe("/ember/instruction", String, ros.qos_latched())
        probe.subscribe(ros.image_topic(ros.CAMERA_PREFIX, "front"), Image, ros.qos_sensor())
        probe.subscribe(ros.camera_info_topic(ros.CAMERA_PREFIX, "front"), CameraInfo, ros.qos_sensor())
        probe.wait_for(
            lambda: probe.json("/mock_arm/task").get("seed") == 2, 60, "the first episode\n" + node.output()
        )
        reset = probe.publisher("/mock_arm/reset", String, ros.qos_command())
        probe.wait_for(lambda: reset.get_subscription_count() > 0, 10, "the reset subscription")
        reset.publish(String(data="5"))
        probe.wait_for(lambda: probe.json("/mock_arm/task").get("seed") == 5, 30, "the reset to seed 5")
        probe.wait_for(
            lambda: ros.CAMERA_PREFIX and probe.counts[ros.image_topic(ros.CAMERA_PREFIX, "front")] > 2,
            30,
            "camera images",
        )
        _, info = env.reset(seed=5)
        status = probe.json("/mock_arm/task")
        assert status["task"] == "Lift" and status["episode"] == 1 and status["succeeded"] is False
        assert probe.latest["/ember/instruction"].data == info["task"] == status["instruction"]
        img = probe.latest[ros.image_topic(ros.CAMERA_PREFIX, "front")]
        assert (img.width, img.height) == (64, 64)
        cam = probe.latest[ros.camera_info_topic(ros.CAMERA_PREFIX, "front")]
        k_sim = env.world.camera_info("front", 64)["intrinsics"]
        # the same camera: ROS CameraInfo puts pixel centres at integers, sims.cameras at half-integers
        np.testing.assert_allclose(
            np.asarray(cam.k).reshape(3, 3),
            k_sim - np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]]),
            rtol=1e-6,
        )
        reset.publish(String(data="not a seed"))
        probe.spin(1.0)
        assert probe.json("/mock_arm/task")["seed"] == 5 and node.alive()
    finally:
        env.close()
        probe.close()
        node.stop()
    assert "expected a seed" in node.output()
    assert json.loads(json.dumps(status))  # plain JSON
