"""Parameters of ``ember-policy-node``: :class:`PolicyNodeConfig` (its ROS parameters) and the node name.

The rclpy node, and the control loop it runs, is ``ember.real.nodes.policy_node``; its ROS-free policy runner
``ember.real.policy_logic``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.real.ros import (
    ACTION_TOPIC,
    CAMERA_PREFIX,
    CORRECTION_TOPIC,
    ESTOP_RESET_TOPIC,
    INSTRUCTION_TOPIC,
    JOINT_STATES_TOPIC,
)
from ember.robots.ee_control import WORKSPACE_HIGH, WORKSPACE_LOW

NODE_NAME = "ember_policy"


@dataclass
class PolicyNodeConfig:
    """Parameters of ``ember-policy-node`` (ROS parameters of the same names)."""

    checkpoint: str = ""
    """A folder written by ``ember train`` (``pretrained_model/`` or a run folder holding it)."""
    robot: str = "panda"
    rate_hz: float = 10.0
    """Control rate; use the fps of the dataset the policy was trained on."""
    device: str = "cpu"
    num_threads: int = 1
    """torch threads for inference (leave cores for ROS and the arm)."""
    freeze: bool = True
    """Trace and freeze the per-step denoising network with TorchScript at start-up: about 1.5x faster chunks on a
    CPU (bench/infer/RESULTS.md), same actions to float rounding. Turn off to debug the eager model."""
    seed: int = 0
    task: str = ""
    """Initial instruction (until one arrives on ``instruction_topic``)."""
    joint_states_topic: str = JOINT_STATES_TOPIC
    expected_state_publisher: str = ""
    """The node whose joint states are the arm's (``"<namespace>/<node_name>"``, e.g. ``/joint_state_broadcaster``
    or a relay's name); empty: the sole publisher at the first state. Another publisher, or a changed one: its
    states are refused (the policy pauses) and reported in the status (``ember.real.state_source``)."""
    estop_reset_topic: str = ESTOP_RESET_TOPIC
    """True here (the operator's go-ahead, as for the bridge's e-stop) re-pins the joint-state publisher after it
    changed."""
    cameras: tuple[str, ...] = ()
    """Camera names; empty: the ones the checkpoint's ``observation.images.<cam>`` features name."""
    camera_topic_prefix: str = CAMERA_PREFIX
    action_topic: str = ACTION_TOPIC
    instruction_topic: str = INSTRUCTION_TOPIC
    correction_topic: str = CORRECTION_TOPIC
    follow_corrections: bool = True
    """Condition the policy on an operator correction for ``correction_hold_s`` seconds (YAY Robot)."""
    correction_hold_s: float = 3.0
    status_topic: str = "/ember/policy/status"
    enable_topic: str = "/ember/policy/enable"
    """``std_msgs/Bool`` (latched): false pauses the policy (no actions; the bridge then holds the arm), true
    resumes it from a fresh history and chunk queue, e.g. after the arm was moved to the next episode's start.
    The node starts enabled."""
    n_action_steps: int = 0
    """Actions executed per chunk; 0: the checkpoint's ``n_action_steps``; at most what a chunk holds from the
    current step (``horizon - n_obs_steps + 1``): longer chunks suit a control rate above the training fps."""
    prefetch_steps: int = 2
    """Start computing the next chunk when this many actions remain."""
    blend_steps: int = 3
    """Steps over which a new chunk is cross-faded in."""
    ee_workspace_low: tuple[float, ...] = WORKSPACE_LOW
    ee_workspace_high: tuple[float, ...] = WORKSPACE_HIGH
    """For ``ee_delta`` / ``ee_pos`` checkpoints: the box (m, robot base frame) the commanded end effector is kept
    in before IK turns it into joint targets (``ember.robots.ee_control``); the default is the tabletop sims' box, so a
    sim-trained policy meets the workspace it was trained in."""
    max_state_age_ms: float = 200.0
    max_image_age_ms: float = 500.0
    check_stamps: bool = True

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError("rate_hz must be positive")
        if self.n_action_steps < 0 or self.prefetch_steps < 0 or self.blend_steps < 0:
            raise ValueError("n_action_steps, prefetch_steps and blend_steps must be >= 0")
