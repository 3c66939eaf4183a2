"""A checkpoint trained on end-effector actions (``ember collect --action_space=ee_delta``) runs on the arm: the
policy node turns each action into joint targets with the sims' IK (``ember.robots.ee_control``), so what it publishes
is a joint_pos command the bridge's safety filter checks as always. Real DDS, the mock arm in its own process."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String

from ember.cli import main
from ember.real import ros
from ember.real.policy_params import PolicyNodeConfig
from ember.real.robot import ForwardKinematics, load_robot
from ember.real.testing.processes import Probe, ros_env, start_node
from ember.robots.ee_control import WORKSPACE_HIGH, WORKSPACE_LOW

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
pytestmark = pytest.mark.timeout(240)
POLICY = PolicyNodeConfig()


@pytest.fixture(scope="module")
def ee_checkpoint(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ee")
    assert (
        main(
            [
                "collect",
                "--task=Reach",
                "--num_episodes=1",
                f"--out={tmp / 'ds'}",
                "--obs_mode=pixels",
                "--image_size=32",
                "--observations=robot",
                "--action_space=ee_delta",
                "--max_episode_steps=12",
                "--keep_failures=true",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                f"--dataset={tmp / 'ds'}",
                f"--out={tmp / 'train'}",
                "--policy.type=bc",
                "--steps=2",
                "--batch_size=4",
                "--policy.horizon=4",
                "--policy.n_action_steps=2",
                "--policy.encoder.vision_backbone=small_cnn",
                "--policy.encoder.crop_shape=none",
            ]
        )
        == 0
    )
    return tmp / "train"


def test_policy_node_runs_an_ee_delta_checkpoint_as_joint_targets(
    ee_checkpoint: Path, tmp_path: Path
) -> None:
    env = ros_env()
    robot = load_robot("panda")
    nodes = [
        start_node("mock_arm", {"cameras": ["front"], "image_width": 64, "image_height": 48}, env, tmp_path),
        start_node(
            "policy", {"checkpoint": str(ee_checkpoint), "rate_hz": 10.0}, env, tmp_path, name="policy"
        ),
    ]
    probe = Probe(domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        probe.subscribe(ros.ACTION_TOPIC, JointState, ros.qos_command(), keep=True)
        probe.subscribe(ros.JOINT_STATES_TOPIC, JointState, ros.qos_sensor())
        probe.subscribe(POLICY.status_topic, String, ros.qos_latched())
        probe.wait_for(
            lambda: probe.counts[ros.ACTION_TOPIC] >= 10,
            timeout=120,
            what="10 actions\n" + "\n".join(n.output()[-2000:] for n in nodes),
        )
        measured = np.asarray(probe.latest[ros.JOINT_STATES_TOPIC].position)
        # pause the node, so its count of published actions is final: the ones the probe lacks were published
        # before it discovered the node (a loaded machine discovers late), so the first one logged is that many
        # steps from the home pose
        probe.publisher(POLICY.enable_topic, Bool, ros.qos_latched()).publish(Bool(data=False))
        probe.wait_for(
            lambda: probe.json(POLICY.status_topic).get("enabled") is False,
            timeout=20,
            what="the policy node to pause",
        )
        probe.spin(0.5)
        status = probe.json(POLICY.status_topic)
        missed = status["published"] - probe.counts[ros.ACTION_TOPIC]
        assert missed >= 0, status
    finally:
        probe.close()
        for n in nodes:
            n.stop()
    assert "end-effector action not executed" not in nodes[1].output()
    fk = ForwardKinematics(robot)
    home_ee = fk.ee_position(measured)  # the mock arm's home pose: above the sims' box (z 0.49 > 0.35)
    previous, steps = measured, 1 + missed
    for _, msg in probe.log[ros.ACTION_TOPIC]:
        q = np.asarray(msg.position)
        assert list(msg.name) == list(robot.state_names) and q.shape == (9,) and np.all(np.isfinite(q))
        ee = fk.ee_position(q)
        low = np.minimum(np.asarray(WORKSPACE_LOW), home_ee) - 0.01
        high = np.maximum(np.asarray(WORKSPACE_HIGH), home_ee) + 0.01
        assert np.all(ee >= low) and np.all(ee <= high)
        # the arm is not commanded (no bridge): each target is one bounded end-effector step from the previous
        # one, never a jump into the box (after a pause on a stale observation the controller restarts from the
        # measured arm, which never moved here)
        seeds = [previous] if status["stale_ticks"] == 0 else [previous, measured]
        assert min(np.abs(q[: robot.dof] - s[: robot.dof]).max() for s in seeds) < 0.25 * steps, (
            missed,
            status,
        )
        assert min(np.linalg.norm(ee - fk.ee_position(s)) for s in seeds) < (0.04 * np.sqrt(3) + 0.01) * steps
        previous, steps = q, 1


def test_a_policy_node_waiting_for_a_camera_says_which_topic(ee_checkpoint: Path, tmp_path: Path) -> None:
    """The mock arm publishes only its ``side`` camera; the checkpoint reads ``front``: the node names the topic
    it waits for (every 2 s) instead of sending nothing silently."""
    import time

    env = ros_env()
    arm = start_node("mock_arm", {"cameras": ["side"], "image_width": 64, "image_height": 48}, env, tmp_path)
    policy = start_node("policy", {"checkpoint": str(ee_checkpoint), "rate_hz": 10.0}, env, tmp_path)
    expected = f"waiting for {ros.image_topic(POLICY.camera_topic_prefix, 'front')}"
    try:
        deadline = time.monotonic() + 90  # the node's start (torch, the checkpoint) under load, then <= 2 s
        while expected not in policy.output() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(4.5)  # two more periods: it says it again, but not on every 10 Hz tick
        log = policy.output()
    finally:
        policy.stop()
        arm.stop()
    assert expected in log, log[-3000:]
    assert "no image 'front' received yet" in log
    assert 2 <= log.count(expected) <= 4, log.count(expected)


def test_the_mock_arm_renders_the_cameras_a_checkpoint_reads(ee_checkpoint: Path, tmp_path: Path) -> None:
    """``checkpoint:=`` (what policy.launch.py passes): the checkpoint's cameras at its image size replace the
    ``cameras`` / ``image_width`` / ``image_height`` parameters."""
    from sensor_msgs.msg import Image

    env = ros_env()
    params = {"cameras": ["side"], "image_width": 64, "image_height": 48, "checkpoint": str(ee_checkpoint)}
    arm = start_node("mock_arm", params, env, tmp_path)
    probe = Probe(domain_id=int(env["ROS_DOMAIN_ID"]))
    front, side = (ros.image_topic(POLICY.camera_topic_prefix, c) for c in ("front", "side"))
    try:
        probe.subscribe(front, Image, ros.qos_sensor())
        probe.subscribe(side, Image, ros.qos_sensor())
        probe.wait_for(
            lambda: probe.counts[front] >= 2, timeout=90, what="front images\n" + arm.output()[-2000:]
        )
        image = probe.latest[front]
        probe.spin(1.0)
    finally:
        probe.close()
        arm.stop()
    assert (image.width, image.height) == (32, 32)  # the checkpoint was trained at 32 px
    assert probe.counts[side] == 0
    assert "cameras ['front'] at 32x32" in arm.output()
