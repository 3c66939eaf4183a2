"""Parameters of ``ember-bridge``: :class:`BridgeConfig` (its ROS parameters, ``safety.*`` nested), the node name.

The rclpy node, and what the bridge does, is ``ember.real.nodes.bridge_node``; its filter ``ember.real.safety``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ember.real.ros import (
    ACTION_TOPIC,
    CAMERA_PREFIX,
    CONTROLLER_TOPIC,
    ESTOP_RESET_TOPIC,
    ESTOP_TOPIC,
    JOINT_STATES_TOPIC,
)
from ember.real.safety import SafetyConfig

NODE_NAME = "ember_bridge"
DERIVED_PARAMETERS = frozenset({"safety.command_period_s"})
"""Computed from ``rate_hz``, never set directly (one rate for the policy, the filter and the controller)."""


@dataclass
class BridgeConfig:
    """Parameters of ``ember-bridge`` (ROS parameters of the same names; ``safety.*`` nested)."""

    robot: str = "panda"
    rate_hz: float = 10.0
    """Command rate: each command is executed over ``1 / rate_hz`` seconds; the velocity limits use it too."""
    joint_states_topic: str = JOINT_STATES_TOPIC
    expected_state_publisher: str = ""
    """The node whose joint states are the arm's (``"<namespace>/<node_name>"``, e.g. ``/joint_state_broadcaster``
    or a relay's name); empty: the sole publisher at the first state. Another publisher, or a changed one, means
    hold and report (``ember.real.state_source``)."""
    cameras: tuple[str, ...] = ()
    """Cameras to include in the observation dict (``ember deploy`` reads them from the bridge)."""
    camera_topic_prefix: str = CAMERA_PREFIX
    action_topic: str = ACTION_TOPIC
    controller_topic: str = CONTROLLER_TOPIC
    estop_topic: str = ESTOP_TOPIC
    estop_reset_topic: str = ESTOP_RESET_TOPIC
    status_topic: str = "/ember/bridge/status"
    status_rate_hz: float = 2.0
    policy_timeout_ms: float = 1000.0
    """Without a new action for this long, hold position (the policy died or hung)."""
    check_stamps: bool = True
    """Also judge freshness by header stamps (needs synchronized clocks); receipt times are always checked."""
    max_image_age_ms: float = 500.0
    realtime_priority: int = 0
    """If > 0, run the bridge under SCHED_FIFO at this priority (as ros2_control's controller manager does; needs
    CAP_SYS_NICE or an rtprio limit): under CPU load it keeps the command path from waiting behind other work."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self) -> None:
        if not self.rate_hz > 0 or not self.status_rate_hz > 0 or not self.policy_timeout_ms > 0:
            raise ValueError("rate_hz, status_rate_hz and policy_timeout_ms must be positive")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError("realtime_priority must be in 0..99")

    def safety_config(self) -> SafetyConfig:
        """The safety config with the derived command period."""
        from dataclasses import replace

        return replace(self.safety, command_period_s=1.0 / self.rate_hz)
