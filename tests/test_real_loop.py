"""The whole ROS 2 stack on real DDS over loopback, each node in its own process: the mock arm, the bridge, the
policy node running a trained checkpoint, the recorder and ``ember correct``.

One set of processes serves the module (they take seconds to start and discover each other); the tests run in
file order and each leaves the stack in a known state: closed loop -> corrections -> faults -> shutdown.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from ember.data import EmberDataset
from ember.real import ros
from ember.real.robot import ForwardKinematics, joint_limits, load_robot
from ember.real.testing.processes import Probe, ros_env, start_node
from ember.real.testing.reach import cached_reach_policy, demo_target

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
pytestmark = pytest.mark.timeout(240)

TASK = "reach the target pose"
RATE = 10.0
WORKSPACE_Y_MAX = 0.055
"""Tight on purpose: the target's end effector sits at y = 0.042, so a small joint-1 step leaves the box."""
MAX_STEP = 0.25
RELIABLE = ReliabilityPolicy.RELIABLE
STATUS = {
    "arm": "/mock_arm/stats",
    "bridge": "/ember/bridge/status",
    "policy": "/ember/policy/status",
    "recorder": "/ember/recorder/status",
}


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.domain = random.SystemRandom().randint(1, 100)
        self.env = ros_env(self.domain)
        self.robot = load_robot("panda")
        self.limits = joint_limits(self.robot)
        self.target = demo_target()
        self.dataset = tmp / "corrections"
        # train first, alone: on 2 cores it takes ~15 s, and three times as long next to the running nodes
        self.checkpoint = cached_reach_policy(tmp.parent / "ember_reach_policy")
        self.nodes = {}
        self.probe = None
        try:
            self._start()
        except BaseException:
            self.close()  # never leave node processes behind
            raise

    def _start(self) -> None:
        tmp = self.tmp
        self.nodes["arm"] = start_node(
            "mock_arm", {"cameras": ["front"], "image_width": 64, "image_height": 48}, self.env, tmp
        )
        self.nodes["bridge"] = start_node(
            "bridge",
            {
                "rate_hz": RATE,
                "policy_timeout_ms": 800.0,
                "safety.max_step": MAX_STEP,
                "safety.workspace_high": [0.9, WORKSPACE_Y_MAX, 1.3],
            },
            self.env,
            tmp,
        )
        self.nodes["recorder"] = start_node(
            "recorder",
            {
                "root": str(self.dataset),
                "fps": 10,
                "cameras": ["front"],
                "episode_duration_s": 0.0,
                "use_videos": True,
                "task": TASK,
            },
            self.env,
            tmp,
        )
        self.probe = Probe(domain_id=self.domain)
        for topic in STATUS.values():
            self.probe.subscribe(topic, String, ros.qos_latched(), keep=True)
        # a deep queue: the probe only takes messages while it spins, and every command must be audited
        self.probe.subscribe(
            ros.CONTROLLER_TOPIC, JointTrajectory, QoSProfile(depth=5000, reliability=RELIABLE), keep=True
        )
        self.probe.subscribe(ros.JOINT_STATES_TOPIC, JointState, ros.qos_sensor())
        self.nodes["policy"] = start_node(
            "policy", {"checkpoint": str(self.checkpoint), "rate_hz": RATE, "task": TASK}, self.env, tmp
        )

    def status(self, name: str) -> dict:
        return self.probe.json(STATUS[name])

    def position(self) -> np.ndarray:
        return np.asarray(self.probe.latest[ros.JOINT_STATES_TOPIC].position)

    def wait_status(self, name: str, predicate, timeout: float, what: str) -> dict:
        try:
            self.probe.wait_for(
                lambda: bool(self.status(name)) and predicate(self.status(name)), timeout, what
            )
        except TimeoutError:
            logs = "\n".join(f"--- {n}\n{p.output()[-3000:]}" for n, p in self.nodes.items())
            raise AssertionError(f"{what}; last {name} status {self.status(name)}\n{logs}") from None
        return self.status(name)

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()
        if self.probe is not None:
            self.probe.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("real_loop"))
    yield s
    s.close()


def test_closed_loop_policy_drives_the_arm_to_the_target(stack):
    arm_reached = lambda st: np.abs(np.asarray(st["position"][:7]) - stack.target[:7]).max() < 0.03  # noqa: E731
    arm = stack.wait_status("arm", arm_reached, 60.0, "the policy to bring the arm to the target")
    stack.probe.spin(1.0)
    arm, bridge, policy = stack.status("arm"), stack.status("bridge"), stack.status("policy")
    report = f"arm {arm}\nbridge {bridge}\npolicy {policy}"
    assert policy["published"] >= 10 and policy["chunks"] >= 3 and policy["errors"] == 0, report
    assert bridge["safety"]["passed"] >= 10 and bridge["safety"]["rejected"] == 0, report
    assert arm["commands"] >= 10 and arm["unsafe"] == 0 and arm["refused"] == 0, report
    # the arm side (this probe, on the controller topic) saw every command the arm executed
    assert len(stack.probe.log[ros.CONTROLLER_TOPIC]) >= arm["commands"] - 1  # (a status lags by < 0.2 s)
    home_err = np.abs(np.asarray(arm["position"][:7]) - stack.robot.home_qpos).max()
    assert home_err > 0.3  # it really moved (the target is 0.35 rad away on joint 1)


def test_typed_corrections_land_in_the_dataset_aligned_to_frames(stack):
    proc = subprocess.Popen(
        [sys.executable, "-m", "ember.real.correct", "--prompt=false", "--listeners=2", "--wait_s=60"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=stack.env,
    )
    typed = []
    assert proc.stdin is not None and proc.stdout is not None
    ready = proc.stdout.readline()  # type only once it listens, as a person at the prompt would
    assert ready.startswith("ready: 2 node(s)"), ready  # the policy node and the recorder
    for line, pause in (("move left", 1.5), ("a bit higher", 1.5), ("/next", 0.0)):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        typed.append((time.monotonic(), line))
        stack.probe.spin(pause)
    proc.stdin.write("/quit\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert out.count("correction sent") == 2 and "recorder: next" in out
    rec = stack.wait_status(
        "recorder", lambda st: st["episodes"] >= 1, 20.0, "the recorder to save episode 0"
    )
    logs = "\n".join(f"--- {n}\n{p.output()[-3000:]}" for n, p in stack.nodes.items())
    assert rec["corrections"] == 2 and rec["corrections_recorded"] == 2, f"recorder {rec}\n{logs}"
    assert rec["late_corrections"] == 0, f"the recorder lagged past correction_latency_s: {rec}"
    policy_tasks = {json.loads(msg.data)["task"] for _, msg in stack.probe.log[STATUS["policy"]]}
    assert {"move left", "a bit higher"} & policy_tasks  # the policy followed the corrections too

    ds = EmberDataset(stack.dataset)
    ep = ds.episode(0)
    n = len(ep["timestamp"])
    assert n >= 30 and ds.fps == 10
    corrected = [i for i in range(n) if ep["language.correction"][i]]
    assert [ep["language.correction"][i] for i in corrected] == ["move left", "a bit higher"]
    for i in range(n):
        when, ts = float(ep["language.correction_timestamp"][i]), float(ep["timestamp"][i])
        if i in corrected:
            assert ts - 0.1 < when <= ts + 1e-6, (i, when, ts)
            assert ep["language.instruction"][i] == ep["language.correction"][i]
        else:
            assert when == -1.0
    gap = float(
        ep["language.correction_timestamp"][corrected[1]] - ep["language.correction_timestamp"][corrected[0]]
    )
    typed_gap = (
        typed[1][0] - typed[0][0]
    )  # what was typed, measured here (a loaded machine stretches the pauses)
    assert gap == pytest.approx(typed_gap, abs=0.25), (
        rec
    )  # rec holds how late the recorder handled them  # the typing rhythm survives (one frame = 0.1 s + delivery)
    assert ep["language.instruction"][0] == TASK and set(ep["task"]) == {TASK}
    assert ep["observation.images.front"].shape == (n, 48, 64, 3)
    # the recorded action is the command the arm executed (holding at the target by now)
    np.testing.assert_allclose(ep["action"][-1][:7], stack.target[:7], atol=0.03)
    np.testing.assert_allclose(ep["observation.state"][-1][:7], stack.target[:7], atol=0.03)


def test_killed_policy_process_leaves_the_arm_holding(stack):
    """The policy dies while the bridge already holds for a joint-state gap: once the states are back, the
    bridge holds for the silent policy and says so (on a loaded machine a state gap can come first)."""
    before = stack.status("bridge")
    inject = _inject_publisher(stack)
    inject.publish(String(data="drop_state 1.0"))
    stack.wait_status(
        "bridge",
        lambda st: st["state"] == "hold" and st["hold_reason"].startswith("stale observation"),
        5.0,
        "the bridge to hold for the state gap",
    )
    stack.nodes["policy"].kill(signal.SIGKILL)
    bridge = stack.wait_status(
        "bridge",
        lambda st: st["policy_timeouts"] == before["policy_timeouts"] + 1 and st["state"] == "hold",
        5.0,
        "the bridge to notice the silent policy",
    )
    assert bridge["hold_reason"] == "no actions from the policy"
    assert bridge["watchdog_holds"] >= before["watchdog_holds"] + 1
    q0 = stack.position()
    stack.probe.spin(1.0)
    assert np.abs(stack.position() - q0).max() < 1e-3  # it holds
    assert stack.status("arm")["unsafe"] == 0


def _inject_publisher(stack):
    """The mock arm's fault-injection topic, matched before use (a message sent earlier is lost)."""
    pub = stack.probe.publisher("/mock_arm/inject", String, ros.qos_command())
    stack.probe.wait_for(lambda: pub.get_subscription_count() >= 1, 5.0, "the mock arm's inject topic")
    return pub


def _publish_actions(stack, actions) -> None:
    pub = stack.probe.publisher(ros.ACTION_TOPIC, JointState, ros.qos_command())
    for q in actions:
        msg = JointState()
        msg.header.stamp = ros.sec_to_stamp(time.time())
        msg.name = list(stack.robot.state_names)
        msg.position = [float(v) for v in q]
        pub.publish(msg)
        stack.probe.spin(0.1)


def test_unsafe_actions_never_reach_the_arm(stack):
    q = stack.position()
    nan = q.copy()
    nan[2] = math.nan
    beyond = q.copy()
    beyond[0] = stack.limits.upper[0] + 0.2  # beyond the 0.05 rad tolerance
    jump = q.copy()
    jump[1] += 2 * MAX_STEP
    outside = q.copy()
    outside[0] += 0.08  # joint 1 swings the hand toward +y, out of the workspace box
    assert ForwardKinematics(stack.robot).ee_position(outside)[1] > WORKSPACE_Y_MAX + 0.01
    bridge0, arm0 = stack.status("bridge"), stack.status("arm")
    _publish_actions(stack, [nan, beyond, jump, outside, q])
    bridge = stack.wait_status("bridge", lambda st: st["actions"] == bridge0["actions"] + 5, 5.0, "5 actions")
    delta = {k: bridge["safety"][k] - bridge0["safety"][k] for k in bridge["safety"]}
    assert delta["nonfinite"] == 1 and delta["position_limit"] == 1 and delta["step"] == 1
    assert delta["workspace"] == 1 and delta["passed"] == 1 and delta["rejected"] == 4
    arm = stack.wait_status(
        "arm", lambda st: st["commands"] == arm0["commands"] + 1, 3.0, "the one safe command"
    )
    assert arm["unsafe"] == 0


def test_stale_observations_make_the_bridge_hold(stack):
    q = stack.position()
    inject = _inject_publisher(stack)
    # a policy that keeps sending while the arm's joint states stop for 1.5 s
    bridge0, arm0 = stack.status("bridge"), stack.status("arm")
    _publish_actions(stack, [q] * 3)
    inject.publish(String(data="drop_state 1.5"))
    _publish_actions(stack, [q] * 25)  # 2.5 s: the dropout and 1 s after it
    bridge = stack.wait_status(
        "bridge", lambda st: st["actions"] == bridge0["actions"] + 28, 5.0, "28 actions"
    )
    delta = {k: bridge["safety"][k] - bridge0["safety"][k] for k in bridge["safety"]}
    assert bridge["watchdog_holds"] == bridge0["watchdog_holds"] + 1
    assert 10 <= delta["stale_observation"] <= 16  # ~1.3 s of 10 Hz actions beyond the 200 ms watchdog
    assert (
        delta["passed"] == 28 - delta["stale_observation"] and delta["rejected"] == delta["stale_observation"]
    )
    # old stamps are stale too, even when the messages arrive on time
    inject.publish(String(data="delay_stamp 1.0"))
    stack.probe.spin(0.3)
    before = stack.status("bridge")["safety"]["stale_observation"]
    _publish_actions(stack, [q] * 3)
    inject.publish(String(data="delay_stamp 0"))
    stack.probe.spin(0.5)
    _publish_actions(stack, [q])
    bridge = stack.wait_status(
        "bridge", lambda st: st["actions"] == bridge0["actions"] + 32, 5.0, "32 actions"
    )
    assert bridge["safety"]["stale_observation"] == before + 3 and bridge["state"] == "running"
    arm = stack.status("arm")
    assert arm["unsafe"] == 0 and arm["commands"] > arm0["commands"]


def test_estop_latches_until_released_and_reset(stack):
    q = stack.position()
    estop = stack.probe.publisher(ros.ESTOP_TOPIC, Bool, ros.qos_latched())
    reset = stack.probe.publisher(ros.ESTOP_RESET_TOPIC, Bool, ros.qos_command())
    bridge0, arm0 = stack.status("bridge"), stack.status("arm")
    estop.publish(Bool(data=True))
    stack.wait_status("bridge", lambda st: st["estop"] and st["state"] == "estop", 3.0, "the e-stop")
    held = stack.position()
    moved = q.copy()
    moved[0] -= 0.05  # a valid, small move: refused while the e-stop is latched
    _publish_actions(stack, [moved] * 3)
    assert np.abs(stack.position() - held).max() < 1e-3  # it holds
    reset.publish(Bool(data=True))  # refused: the e-stop topic still reads true
    stack.probe.spin(0.3)
    bridge = stack.wait_status("bridge", lambda st: st["actions"] == bridge0["actions"] + 3, 3.0, "3 actions")
    assert bridge["estop"] and bridge["safety"]["estop"] == bridge0["safety"]["estop"] + 3
    estop.publish(Bool(data=False))
    stack.probe.spin(0.3)
    reset.publish(Bool(data=True))
    stack.wait_status("bridge", lambda st: not st["estop"], 3.0, "the e-stop reset")
    _publish_actions(stack, [q])
    bridge = stack.wait_status("bridge", lambda st: st["state"] == "running", 3.0, "commands to flow again")
    assert bridge["safety"]["passed"] == bridge0["safety"]["passed"] + 1
    arm = stack.wait_status("arm", lambda st: st["commands"] == arm0["commands"] + 2, 3.0, "hold + 1 command")
    assert (
        arm["unsafe"] == 0
    )  # the e-stop hold (at the measured position) and the one command after the reset


def test_every_command_the_arm_received_was_safe(stack):
    commands = [msg for _, msg in stack.probe.log[ros.CONTROLLER_TOPIC]]
    assert len(commands) == stack.status("arm")["commands"]
    lo, hi, vel = stack.limits.lower, stack.limits.upper, stack.limits.velocity
    prev = None
    for msg in commands:
        assert list(msg.joint_names) == list(stack.robot.state_names) and len(msg.points) == 1
        p = np.asarray(msg.points[0].positions)
        dt = ros.duration_to_sec(msg.points[0].time_from_start)
        assert dt == pytest.approx(1.0 / RATE)
        assert np.all(np.isfinite(p)) and np.all(p >= lo) and np.all(p <= hi)
        if prev is not None:
            assert np.all(np.abs(p - prev) <= vel * dt + 1e-9)  # never faster than the joint limits
        prev = p
    assert stack.status("arm")["unsafe"] == 0


def test_recorder_saves_the_episode_in_progress_on_shutdown(stack):
    frames = stack.wait_status("recorder", lambda st: st["episode_frames"] >= 5, 10.0, "frames")[
        "episode_frames"
    ]
    assert stack.nodes["recorder"].stop() == 0
    ds = EmberDataset(stack.dataset)
    assert ds.num_episodes == 2 and ds.episode_length(1) >= frames
