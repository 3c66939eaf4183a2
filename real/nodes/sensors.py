"""The sensor inputs every node that acts on observations shares (bridge, policy node, recorder): the joint
states and each camera's images, fed into a :class:`~real.observation.ObservationBuilder` with their stamps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from real import ros
from real.observation import ObservationBuilder


def subscribe_observations(node: Node, builder: ObservationBuilder, joint_states_topic: str,
                           camera_topic_prefix: str, cameras: Sequence[str], **subscription: Any) -> None:
    """Subscribe ``node`` to ``joint_states_topic`` and ``<camera_topic_prefix>/<cam>/image_raw`` for each camera
    (sensor QoS), updating ``builder``; ``subscription`` keywords (e.g. ``callback_group``) go to every one."""

    def on_state(msg: JointState) -> None:
        builder.update_state(msg.name, msg.position, ros.stamp_to_sec(msg.header.stamp))

    def on_image(cam: str, msg: Image) -> None:
        builder.update_image(cam, ros.image_to_numpy(msg), ros.stamp_to_sec(msg.header.stamp))

    node.create_subscription(JointState, joint_states_topic, on_state, ros.qos_sensor(), **subscription)
    for cam in cameras:
        node.create_subscription(Image, ros.image_topic(camera_topic_prefix, cam),
                                 lambda msg, cam=cam: on_image(cam, msg), ros.qos_sensor(), **subscription)
