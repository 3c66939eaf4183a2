"""Parameters of ``ember-recorder``: :class:`RecorderConfig` (its ROS parameters), node name, control commands.

The rclpy node, and what the recorder does, is ``ember.real.nodes.recorder_node``; the ROS-free episode writing
``ember.real.recorder_logic``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ember.real.ros import (
    CAMERA_PREFIX,
    CONTROLLER_TOPIC,
    CORRECTION_TOPIC,
    ESTOP_RESET_TOPIC,
    INSTRUCTION_TOPIC,
    JOINT_STATES_TOPIC,
    RECORDER_CONTROL_TOPIC,
    RECORDER_STATUS_TOPIC,
)

NODE_NAME = "ember_recorder"
CONTROL_COMMANDS = ("start", "next", "discard", "stop")


@dataclass
class RecorderConfig:
    """Parameters of ``ember-recorder`` (ROS parameters of the same names)."""

    root: str = ""
    """Dataset folder to create (must not exist or be empty)."""
    robot: str = "panda"
    fps: int = 10
    task: str = ""
    """Task instruction until one arrives on ``instruction_topic``."""
    cameras: tuple[str, ...] = ("front",)
    camera_poses: tuple[str, ...] = ()
    """Calibrated camera poses, one ``"<camera> x y z qw qx qy qz"`` string each: the camera's optical frame (x
    right, y down, z forward) in the robot base frame. With a pose and the camera's ``camera_info``, the dataset
    records the camera's intrinsics and extrinsics in ``meta/ember_cameras.json``, so trajectory sketches and
    keypoints of the recording are drawn without a simulator (``ember.conditioning.cameras``)."""
    use_videos: bool = True
    """Store cameras as mp4 (LeRobot's default) rather than PNG frames."""
    episode_duration_s: float = 20.0
    """Length of an episode; 0: until ``next`` or ``stop`` on ``control_topic``."""
    num_episodes: int = 0
    """Stop recording after this many saved episodes (0: no limit)."""
    autostart: bool = True
    """Start the first episode at once (else wait for ``start``)."""
    save_partial: bool = True
    """On shutdown, save the episode in progress (if it has ``min_episode_frames``)."""
    min_episode_frames: int = 2
    joint_states_topic: str = JOINT_STATES_TOPIC
    expected_state_publisher: str = ""
    """The node whose joint states are the arm's (``"<namespace>/<node_name>"``, e.g. ``/joint_state_broadcaster``
    or a relay's name); empty: the sole publisher at the first state. Another publisher, or a changed one: its
    states are refused (frames are skipped) and reported in the status (``ember.real.state_source``)."""
    estop_reset_topic: str = ESTOP_RESET_TOPIC
    """True here (the operator's go-ahead, as for the bridge's e-stop) re-pins the joint-state publisher after it
    changed."""
    camera_topic_prefix: str = CAMERA_PREFIX
    command_topic: str = CONTROLLER_TOPIC
    """The arm's command topic (``JointTrajectory``): what the arm was told is the recorded action."""
    instruction_topic: str = INSTRUCTION_TOPIC
    correction_topic: str = CORRECTION_TOPIC
    control_topic: str = RECORDER_CONTROL_TOPIC
    status_topic: str = RECORDER_STATUS_TOPIC
    correction_latency_s: float = 1.0
    """Frames are written this long after they are sampled, so a correction that a busy machine delivers up to this
    late still lands on the frame of the moment it was sent (``late_corrections`` in the status counts the ones
    that came later still)."""
    correction_hold_s: float = 3.0
    """How long a correction stays the active instruction (match the policy node's)."""
    max_state_age_ms: float = 200.0
    max_image_age_ms: float = 500.0
    check_stamps: bool = True

    def poses(self) -> dict[str, list[float]]:
        """``camera_poses`` parsed: camera -> [x, y, z, qw, qx, qy, qz]."""
        out: dict[str, list[float]] = {}
        for entry in self.camera_poses:
            parts = str(entry).split()
            try:
                values = [float(v) for v in parts[1:]]
            except ValueError:
                values = []
            if len(parts) != 8 or len(values) != 7 or not all(map(math.isfinite, values)):
                raise ValueError(f"camera_poses entry {entry!r}: expected '<camera> x y z qw qx qy qz'")
            if parts[0] not in self.cameras:
                raise ValueError(
                    f"camera_poses names camera {parts[0]!r}, which is not in cameras {list(self.cameras)}"
                )
            out[parts[0]] = values
        return out

    def __post_init__(self) -> None:
        self.poses()  # a malformed pose is an error at start-up, not when the first frame is written
        if (
            self.fps <= 0
            or self.episode_duration_s < 0
            or self.num_episodes < 0
            or self.min_episode_frames < 1
        ):
            raise ValueError(
                "fps > 0, episode_duration_s >= 0, num_episodes >= 0, min_episode_frames >= 1 needed"
            )
        if not 0.0 <= self.correction_latency_s <= 10.0:
            raise ValueError(f"correction_latency_s must be in [0, 10] s, got {self.correction_latency_s}")
