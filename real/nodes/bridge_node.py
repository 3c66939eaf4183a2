"""``ember-bridge``: the only publisher of arm commands; every command passes the safety filter first.

Why a separate node (and process): the safety filter must outlive a policy that crashes, hangs or is killed,
and it must be the one place a reviewer checks to know what can reach the arm. The bridge:

- subscribes to joint states (and cameras, for the observation dict) and checks their freshness;
- takes proposed targets from any policy or teleoperator on ``/ember/action`` (``sensor_msgs/JointState``:
  joint names, positions, and the stamp of the observation that was current when the action was issued);
- trusts joint states only from the arm's own publisher (``ember.real.state_source``): when another publisher claims
  the topic, or the publisher changes, it refuses commands, holds and reports (``state_source`` in its status);
  a changed publisher is re-pinned only by true on ``/ember/estop_reset``;
- filters them (``ember.real.safety``) and forwards the survivors to the controller as one-point
  ``JointTrajectory`` messages executed over one command period;
- holds position when observations go stale, when actions stop coming, or on the latching e-stop
  (``std_msgs/Bool`` true on ``/ember/estop``; released only by true on ``/ember/estop_reset`` while the e-stop
  topic itself reads false);
- publishes its counters as JSON on ``/ember/bridge/status`` (latched).

Its parameters are in ``ember.real.bridge_params``.
"""

from __future__ import annotations

import array
import json
import time
from collections import deque
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from trajectory_msgs.msg import JointTrajectory

from ember.real import ros
from ember.real.bridge_params import DERIVED_PARAMETERS, NODE_NAME, BridgeConfig
from ember.real.histogram import LatencyHistogram
from ember.real.nodes.sensors import subscribe_observations
from ember.real.observation import Observation, ObservationBuilder, Staleness
from ember.real.params import declare_config
from ember.real.robot import ForwardKinematics, joint_limits, load_robot
from ember.real.safety import ESTOP, STALE_OBSERVATION, SafetyFilter
from ember.real.state_source import HOLD_REASON, Fault

POLICY_SILENT = "no actions from the policy"  # the hold reason after the policy timeout


class BridgeNode(Node):
    """Observation dict + safety filter in front of the controller."""

    def __init__(
        self, defaults: BridgeConfig | None = None, node_name: str = NODE_NAME, **node_kwargs: Any
    ) -> None:
        super().__init__(node_name, **node_kwargs)
        self.cfg = cfg = declare_config(self, BridgeConfig, defaults, derived=DERIVED_PARAMETERS)
        self.robot = load_robot(cfg.robot)
        self.names = self.robot.state_names
        safety = cfg.safety_config()
        self.period = safety.command_period_s
        fk = ForwardKinematics(self.robot)
        self.filter = SafetyFilter(
            joint_limits(self.robot), safety, fk=fk.ee_position, logger=self.get_logger().warning
        )
        self.observations = ObservationBuilder(
            self.names,
            cfg.cameras,
            max_state_age_s=safety.observation_timeout_ms / 1e3,
            max_image_age_s=cfg.max_image_age_ms / 1e3,
            check_stamps=cfg.check_stamps,
        )
        self.state = "waiting"
        """waiting (no command yet), running, hold (watchdog or silent policy) or estop."""
        self.hold_reason = ""
        self.actions = 0
        self.commands = 0
        self.untrusted_refusals = 0
        """Actions refused because the joint states' publisher is in doubt (``ember.real.state_source``)."""
        self._source_fault: Fault | None = None
        self.last_action_time = -np.inf
        self._estop_topic_value = False
        self.latency_ms: deque[float] = deque(maxlen=5000)
        """The last 5000 commands: action receipt -> command published (the bridge's own processing)."""
        self.obs_to_command_ms: deque[float] = deque(maxlen=5000)
        """Per command: receipt of the latest joint state -> command published."""
        self.histograms = {"latency_ms": LatencyHistogram(), "obs_to_command_ms": LatencyHistogram()}
        """The same two, every command since start (a monitor differences snapshots to get any window's figures)."""

        self._cmd_pub = self.create_publisher(JointTrajectory, cfg.controller_topic, ros.qos_command())
        self._command = ros.joint_trajectory(self.names, np.zeros(len(self.names)), self.period)  # reused
        self._status_pub = self.create_publisher(String, cfg.status_topic, ros.qos_latched())
        self.sensors = subscribe_observations(
            self,
            self.observations,
            cfg.joint_states_topic,
            cfg.camera_topic_prefix,
            cfg.cameras,
            expected_state_publisher=cfg.expected_state_publisher,
            reset_topic=cfg.estop_reset_topic,
            on_source_change=self._on_source_change,
            message_info=False,
        )  # the EventsExecutor can't pass it
        self.create_subscription(JointState, cfg.action_topic, self._on_action, ros.qos_command())
        self.create_subscription(Bool, cfg.estop_topic, self._on_estop, ros.qos_latched())
        self.create_subscription(Bool, cfg.estop_reset_topic, self._on_estop_reset, ros.qos_command())
        self.create_timer(
            max(0.005, safety.observation_timeout_ms / 1e4), self._watchdog
        )  # 10 checks per timeout
        self.create_timer(1.0 / cfg.status_rate_hz, self.publish_status)
        self.sros2 = ros.sros2_mode()
        if self.sros2 == "off":
            self.get_logger().info(
                "SROS2 is off: joint states are not authenticated; the bridge trusts only the "
                "publisher it pinned (docs/ros.md)"
            )
        if cfg.realtime_priority:
            problem = ros.set_realtime_priority(cfg.realtime_priority)
            if problem:
                self.get_logger().warning(problem)
        self.get_logger().info(
            f"bridge for {self.robot.name}: {cfg.action_topic} -> safety filter -> {cfg.controller_topic} at "
            f"{cfg.rate_hz:g} Hz (watchdog {safety.observation_timeout_ms:g} ms, max step {safety.max_step} rad)"
        )

    # ------------------------------------------------------------------------------------- inputs
    def observation(self) -> Observation | Staleness:
        """The current observation dict (for in-process policies, e.g. ``ember deploy``)."""
        return self.observations.build()

    def _on_action(self, msg: JointState) -> None:
        received = time.monotonic()
        self.actions += 1
        self.last_action_time = received
        fault = self.sensors.fault
        if fault is not None:  # no measured state to judge it by: only the arm's own publisher's states count
            self.untrusted_refusals += 1
            self.get_logger().warning(
                f"command refused: joint states in doubt ({fault})", throttle_duration_sec=1.0
            )
            return
        latest = self.observations.latest_state()
        measured = None if latest is None else latest[0].astype(float)
        obs_age = self.observations.state_age(received)
        stamp = ros.stamp_to_sec(msg.header.stamp)
        action_age = time.time() - stamp if (self.cfg.check_stamps and stamp > 0) else 0.0
        decision = self.filter.check(
            msg.name,
            msg.position,
            measured=measured,
            observation_age_s=obs_age,
            action_age_s=action_age,
            now=received,
        )
        if not decision.ok:
            return
        self._send(decision.target)
        done = time.monotonic()
        self.latency_ms.append((done - received) * 1e3)
        self.histograms["latency_ms"].add((done - received) * 1e3)
        if latest is not None:
            self.obs_to_command_ms.append((done - latest[1]) * 1e3)
            self.histograms["obs_to_command_ms"].add((done - latest[1]) * 1e3)
        if self.state != "running":
            self.get_logger().info(f"commanding the arm ({self.state} -> running)")
        self.state, self.hold_reason = "running", ""

    def _on_estop(self, msg: Bool) -> None:
        self._estop_topic_value = bool(msg.data)
        if msg.data and not self.filter.estopped:
            self.filter.engage_estop(f"{self.cfg.estop_topic} is true")
            self._hold(ESTOP, prefer_measured=True)
            self.state = "estop"
            self.publish_status()

    def _on_estop_reset(self, msg: Bool) -> None:
        if not msg.data or not self.filter.estopped:
            return
        if self._estop_topic_value:
            self.get_logger().error(f"e-stop reset refused: {self.cfg.estop_topic} still reads true")
            return
        self.filter.reset_estop()
        self.state, self.hold_reason = "waiting", ""
        self.publish_status()

    def _on_source_change(self, fault: Fault | None) -> None:
        """The joint states' publisher came into doubt (hold, as the watchdog does) or is trusted again."""
        if fault is not None:
            if (
                self._source_fault is None
            ):  # into the fault (later calls only reword it: a node's name got known)
                self.filter.counts["state_source_holds"] += 1
                self._hold(
                    HOLD_REASON
                )  # the builder has dropped its state: the last safe command, or nothing
            if self.state != "estop":
                self.state, self.hold_reason = "hold", f"joint states: {fault}"
        self._source_fault = fault
        self.publish_status()

    # ------------------------------------------------------------------------------------- holding
    def _watchdog(self) -> None:
        """Hold when the joint states go stale or the policy goes silent while running.

        A hold for a stale observation is re-examined too: once the states are fresh again but no action
        has come for the policy timeout, the arm is now holding because of the policy, and the status says
        so (a dead policy process behind a brief state gap would otherwise read as a state problem).
        """
        if self.state not in ("running", "hold"):
            return
        now = time.monotonic()
        stale_ms = self.observations.state_age(now) * 1e3
        stale = stale_ms > self.filter.config.observation_timeout_ms
        silent = (now - self.last_action_time) * 1e3 > self.cfg.policy_timeout_ms
        if self.state == "running" and stale:
            self.filter.counts["watchdog_holds"] += 1
            self._hold(STALE_OBSERVATION)
            self.state, self.hold_reason = "hold", f"stale observation ({stale_ms:.0f} ms)"
            self.get_logger().warning(f"watchdog: {self.hold_reason}; holding position")
        elif silent and not stale and (self.state == "running" or self._holding_for_stale_states()):
            self.filter.counts["policy_timeouts"] += 1
            self._hold("policy_timeout")
            self.state, self.hold_reason = "hold", POLICY_SILENT
            self.get_logger().warning(
                f"watchdog: {self.hold_reason} for {self.cfg.policy_timeout_ms:g} ms; holding"
            )

    def _holding_for_stale_states(self) -> bool:
        return self.state == "hold" and self.hold_reason.startswith("stale observation")

    def _hold(self, reason: str, prefer_measured: bool = False) -> None:
        latest = self.observations.latest_state()
        fresh = (
            latest is not None
            and self.observations.state_age() * 1e3 <= self.filter.config.observation_timeout_ms
        )
        measured = latest[0].astype(float) if fresh else None
        target = self.filter.hold(measured, reason, prefer_measured=prefer_measured)
        if target is not None:
            self._send(target)

    def _send(self, target: np.ndarray) -> None:
        self._command.points[0].positions = array.array(
            "d", target.tolist()
        )  # typed array: no per-value checks
        self._cmd_pub.publish(self._command)
        self.commands += 1

    # ------------------------------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        def pct(values: deque[float]) -> dict[str, float]:
            if not values:
                return {}
            arr = np.fromiter(values, float)
            return {
                "p50": round(float(np.percentile(arr, 50)), 3),
                "p99": round(float(np.percentile(arr, 99)), 3),
                "max": round(float(arr.max()), 3),
                "n": int(arr.size),
            }

        return {
            "state": self.state,
            "hold_reason": self.hold_reason,
            "actions": self.actions,
            "commands": self.commands,
            "estop": self.filter.estopped,
            "safety": self.filter.summary(),
            "watchdog_holds": int(self.filter.counts.get("watchdog_holds", 0)),
            "policy_timeouts": int(self.filter.counts.get("policy_timeouts", 0)),
            "state_source_holds": int(self.filter.counts.get("state_source_holds", 0)),
            "untrusted_refusals": self.untrusted_refusals,
            "state_source": self.sensors.summary(),
            "sros2": self.sros2,
            "dropped_states": self.observations.dropped_states,
            "latency_ms": pct(self.latency_ms),
            "obs_to_command_ms": pct(self.obs_to_command_ms),
            "histograms": {k: h.to_json() for k, h in self.histograms.items()},
        }

    def publish_status(self) -> None:
        self._status_pub.publish(String(data=json.dumps(self.status())))


def main(args: list[str] | None = None) -> int:
    """Console script ``ember-bridge`` (accepts ``--ros-args -p name:=value --params-file f.yaml``)."""
    return ros.run_node(BridgeNode, args, executor="events")


if __name__ == "__main__":
    raise SystemExit(main())
