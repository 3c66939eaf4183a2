"""The sensor inputs every node that acts on observations shares (bridge, policy node, recorder): the joint
states and each camera's images, fed into a :class:`~real.observation.ObservationBuilder` with their stamps.

Joint states pass :class:`~real.state_source.StateSource` first: only the arm's own publisher (pinned at the first
state, or named by ``expected_state_publisher``) counts as measured; while another publisher claims the topic, or
after the publisher changed, every state is refused and the builder forgets the one it held.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool

from ember.real import ros
from ember.real.observation import ObservationBuilder
from ember.real.state_source import Fault, Publisher, StateSource

GRAPH_CHECK_PERIOD_S = 0.1
"""Besides at every joint state, the graph is checked this often: a publisher that appears is reported (and a
fault cleared) even while no state arrives."""


class StateSourceMonitor:
    """ROS side of :class:`StateSource`: reads the graph's publishers of the joint-state topic, judges every joint
    state, and calls ``on_change(fault)`` when a fault starts, changes or ends (``None``)."""

    def __init__(
        self,
        node: Node,
        builder: ObservationBuilder,
        topic: str,
        expected: str = "",
        on_change: Callable[[Fault | None], None] | None = None,
    ) -> None:
        self.node = node
        self.builder = builder
        self.topic = topic
        self.source = StateSource(topic, expected)
        self.on_change = on_change
        self._reported: Fault | None = None

    @property
    def fault(self) -> Fault | None:
        return self.source.fault

    def summary(self) -> dict[str, Any]:
        return self.source.summary()

    def refresh(self, now: float | None = None) -> None:
        """Read the graph's publishers of the topic now (about 40 us with two publishers)."""
        infos = self.node.get_publishers_info_by_topic(self.topic)
        pubs = [Publisher.from_endpoint(i.node_namespace, i.node_name, i.endpoint_gid) for i in infos]
        self.source.update_publishers(pubs, time.monotonic() if now is None else now)
        self._notify()

    def on_state(self, msg: JointState, info: Any = None) -> None:
        now = time.monotonic()
        self.refresh(now)  # Fast DDS listed a new writer before delivering its first sample (13 of 13 tries)
        seq = info.get("publication_sequence_number") if isinstance(info, dict) else None
        if self.source.accept(now, seq):
            self.builder.update_state(
                msg.name, msg.position, ros.stamp_to_sec(msg.header.stamp), received=now
            )
        self._notify()

    def on_reset(self, msg: Bool) -> None:
        if not msg.data or (self.source.fault is None and self.source.pinned is not None):
            return
        self.refresh()
        self.node.get_logger().warning(self.source.reset(time.monotonic()))
        self._notify()

    def _notify(self) -> None:
        fault = self.source.fault
        if fault == self._reported:
            return
        self._reported = fault
        if fault is not None:
            self.builder.clear_state()  # a state taken before the fault was seen is not trusted either
            self.node.get_logger().error(f"joint states refused: {fault}")
        else:
            self.node.get_logger().info(f"joint states trusted again: {self.source.summary()['pinned']}")
        if self.on_change is not None:
            self.on_change(fault)


def subscribe_observations(
    node: Node,
    builder: ObservationBuilder,
    joint_states_topic: str,
    camera_topic_prefix: str,
    cameras: Sequence[str],
    *,
    expected_state_publisher: str = "",
    reset_topic: str = "",
    on_source_change: Callable[[Fault | None], None] | None = None,
    message_info: bool = True,
    **subscription: Any,
) -> StateSourceMonitor:
    """Subscribe ``node`` to ``joint_states_topic`` and ``<camera_topic_prefix>/<cam>/image_raw`` for each camera
    (sensor QoS), updating ``builder``; ``subscription`` keywords (e.g. ``callback_group``) go to every one.

    Joint states are judged by a :class:`StateSourceMonitor` (returned): ``expected_state_publisher``
    (``"<namespace>/<node_name>"``, empty: the first sole publisher) names the arm's publisher; true on
    ``reset_topic`` (the e-stop reset) re-pins after a changed publisher; ``on_source_change`` hears of faults.
    ``message_info`` False: a one-argument state callback, without the sequence-number check (rclpy 7.1.6's
    EventsExecutor, which the bridge runs, fails on two-argument callbacks: "SystemError: null argument to internal
    routine"); the graph check at every state remains."""

    def on_image(cam: str, msg: Image) -> None:
        builder.update_image(cam, ros.image_to_numpy(msg), ros.stamp_to_sec(msg.header.stamp))

    monitor = StateSourceMonitor(
        node, builder, joint_states_topic, expected_state_publisher, on_source_change
    )
    on_state = (
        (lambda msg, info: monitor.on_state(msg, info))
        if message_info
        else (lambda msg: monitor.on_state(msg))
    )
    sub = node.create_subscription(JointState, joint_states_topic, on_state, ros.qos_sensor(), **subscription)
    monitor.topic = monitor.source.topic = sub.topic_name  # resolved and remapped: what the graph lists
    node.create_timer(
        GRAPH_CHECK_PERIOD_S, lambda: monitor.refresh(), callback_group=subscription.get("callback_group")
    )
    if reset_topic:
        node.create_subscription(Bool, reset_topic, monitor.on_reset, ros.qos_command(), **subscription)
    for cam in cameras:
        node.create_subscription(
            Image,
            ros.image_topic(camera_topic_prefix, cam),
            lambda msg, cam=cam: on_image(cam, msg),
            ros.qos_sensor(),
            **subscription,
        )
    return monitor
