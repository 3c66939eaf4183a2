"""``ember-recorder``: record what the arm saw and was told, with language corrections, into a dataset.

At ``fps`` it samples the latest joint state and camera images, the command in effect on the controller topic
(the action, in ``joint_pos`` space; the current state until a command arrives), the active instruction and any
operator correction (``std_msgs/String`` on ``/ember/correction``, typed with ``ember correct``), and appends a
frame (``ember.real.recorder_logic`` describes the columns and the timestamp alignment). Frame ``i`` is the sample for
time ``i / fps`` after the episode start: when a tick comes late the missed slots repeat the latest sample
(counted), so the dataset's clock never drifts from wall time. Episodes end after
``episode_duration_s`` or on ``next`` / ``discard`` / ``stop`` on ``/ember/recorder/control``; each saved
episode is durable on disk before the next one starts, and SIGINT/SIGTERM save the one in progress.

Its parameters are in ``ember.real.recorder_params``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from ember.real import ros
from ember.real.errors import RealError
from ember.real.language import LanguageState
from ember.real.nodes.sensors import subscribe_observations
from ember.real.observation import ObservationBuilder, Staleness
from ember.real.params import declare_config
from ember.real.recorder_logic import EpisodeRecorder
from ember.real.recorder_params import CONTROL_COMMANDS, NODE_NAME, RecorderConfig
from ember.real.robot import load_robot


class RecorderNode(Node):
    """Samples frames at ``fps``; language and control callbacks run in their own group, so a correction is
    timestamped when it arrives even while an episode is being saved."""

    def __init__(
        self, defaults: RecorderConfig | None = None, node_name: str = NODE_NAME, **node_kwargs: Any
    ) -> None:
        super().__init__(node_name, **node_kwargs)
        self.cfg = cfg = declare_config(self, RecorderConfig, defaults)
        if not cfg.root:
            raise RealError("set the 'root' parameter to the dataset folder to create")
        robot = load_robot(cfg.robot)
        self.names = robot.state_names
        self._index = {n: i for i, n in enumerate(self.names)}
        self.language = LanguageState(cfg.task, hold_s=cfg.correction_hold_s)
        self.recorder = EpisodeRecorder(
            cfg.root,
            cfg.fps,
            robot.name,
            self.names,
            cfg.cameras,
            self.language,
            use_videos=cfg.use_videos,
            hold_s=cfg.correction_latency_s,
        )
        self.observations = ObservationBuilder(
            self.names,
            cfg.cameras,
            max_state_age_s=cfg.max_state_age_ms / 1e3,
            max_image_age_s=cfg.max_image_age_ms / 1e3,
            check_stamps=cfg.check_stamps,
        )
        self._command: np.ndarray | None = None
        self.recording = cfg.autostart
        self._episode_start: float | None = None
        self._closed = False
        self.correction_age_max_s = 0.0
        """Longest a correction waited between being sent and this node handling it (a busy node's lag)."""
        self._lock = threading.Lock()  # the sampling callback and close() both touch the writer

        sensors = MutuallyExclusiveCallbackGroup()
        language = MutuallyExclusiveCallbackGroup()
        sampling = MutuallyExclusiveCallbackGroup()
        self.sensors = subscribe_observations(
            self,
            self.observations,
            cfg.joint_states_topic,
            cfg.camera_topic_prefix,
            cfg.cameras,
            expected_state_publisher=cfg.expected_state_publisher,
            reset_topic=cfg.estop_reset_topic,
            callback_group=sensors,
        )
        self.create_subscription(
            JointTrajectory, cfg.command_topic, self._on_command, ros.qos_command(), callback_group=sensors
        )
        self.create_subscription(
            String,
            cfg.instruction_topic,
            lambda m: self.language.set_instruction(m.data),
            ros.qos_latched(),
            callback_group=language,
        )
        self.create_subscription(
            String, cfg.correction_topic, self._on_correction, ros.qos_command(), callback_group=language
        )
        self.create_subscription(
            String, cfg.control_topic, self._on_control, ros.qos_command(), callback_group=language
        )
        self._status_pub = self.create_publisher(String, cfg.status_topic, ros.qos_latched())
        self._camera_poses = cfg.poses()
        self._camera_info: dict[str, CameraInfo] = {}
        self.cameras_written: set[str] = set()
        for cam in self._camera_poses:
            self.create_subscription(
                CameraInfo,
                ros.camera_info_topic(cfg.camera_topic_prefix, cam),
                lambda msg, cam=cam: self._camera_info.__setitem__(cam, msg),
                ros.qos_sensor(),
                callback_group=sensors,
            )
        self.create_timer(1.0 / cfg.fps, self._sample, callback_group=sampling)
        self.create_timer(0.5, self.publish_status, callback_group=language)
        self.get_logger().info(
            f"recording {cfg.fps} fps to '{cfg.root}' (cameras {list(cfg.cameras)}, "
            f"episodes of {cfg.episode_duration_s:g} s); corrections on {cfg.correction_topic}"
        )

    # ----------------------------------------------------------------------------------------- inputs
    def _on_command(self, msg: JointTrajectory) -> None:
        if not msg.points:
            return
        latest = self.observations.latest_state()
        base = self._command if self._command is not None else (None if latest is None else latest[0])
        if base is None:
            return
        target = np.array(base, dtype=np.float64)
        for name, value in zip(msg.joint_names, msg.points[-1].positions, strict=False):
            if name in self._index:
                target[self._index[name]] = value
        self._command = target

    def _on_correction(self, msg: String, info: Any) -> None:
        # stamped with when it was sent, not when this callback got to run
        age = ros.message_age_s(info)
        self.correction_age_max_s = max(self.correction_age_max_s, age)
        corr = self.recorder.add_correction(msg.data, time.monotonic() - age)
        if corr is not None:
            self.get_logger().info(f"correction: {corr.text!r}")

    def _on_control(self, msg: String) -> None:
        command = msg.data.strip().lower()
        if command not in CONTROL_COMMANDS:
            self.get_logger().error(f"unknown recorder command {msg.data!r}; use one of {CONTROL_COMMANDS}")
            return
        self._control = command  # executed by the sampling callback (it owns the writer)

    # ----------------------------------------------------------------------------------------- sampling
    _control: str | None = None

    def _sample(self) -> None:
        with self._lock:
            if not self._closed:
                self._sample_locked()

    def _sample_locked(self) -> None:
        now = time.monotonic()
        command, self._control = self._control, None
        if command is not None:
            # frames due until now belong to the episode in progress, even when this tick came late: a
            # "next" typed 1.5 s after a correction must not cut the episode before the correction's frame
            if self.recording and self._episode_start is not None:
                self._record_due(now)
            self._apply(command)
        if self.recording:
            self._record_due(now)
        self._write_cameras()

    def _write_cameras(self) -> None:
        """Once the dataset exists: each posed camera's geometry (from its camera_info) into meta/."""
        if self.recorder.writer is None:
            return
        todo = {c: info for c, info in self._camera_info.items() if c not in self.cameras_written}
        if not todo:
            return
        from ember.conditioning.cameras import camera_from_pose, write_dataset_cameras

        models = {
            c: camera_from_pose(info.k, info.width, info.height, self._camera_poses[c])
            for c, info in todo.items()
        }
        write_dataset_cameras(self.cfg.root, models)
        self.cameras_written |= set(models)
        self.get_logger().info(
            f"camera geometry of {sorted(models)} written to {self.cfg.root}/meta/ember_cameras.json"
        )

    def _record_due(self, now: float) -> None:
        period = 1.0 / self.cfg.fps
        obs = self.observations.build(now)
        if isinstance(obs, Staleness):
            self.recorder.stats.skipped_frames += 1
            if self._episode_start is not None:  # a gap in the data, not in the episode's clock
                self._episode_start += period
            self.get_logger().warning(f"frame skipped: {obs}", throttle_duration_sec=2.0)
            return
        if self._episode_start is None:
            self._episode_start = now
        # Frame i belongs to time start + i / fps (the dataset's clock). A timer tick that came late (a loaded
        # machine, a slow callback) must not compress that clock: fill the missed slots with the latest sample
        # (sample-and-hold), so corrections and actions stay aligned with wall time.
        due = int((now - self._episode_start) * self.cfg.fps + 1e-6) + 1
        missing = due - self.recorder.episode_frames
        if missing <= 0:
            return
        if missing > 1:
            self.recorder.stats.repeated_frames += missing - 1
            self.get_logger().warning(
                f"recorder fell {missing - 1} frame(s) behind; repeating the latest sample",
                throttle_duration_sec=2.0,
            )
        action = self._command if self._command is not None else obs.data["observation.state"]
        for i in range(self.recorder.episode_frames, due):
            self.recorder.add_frame(obs.data, action, self._episode_start + i * period)
            if self.cfg.episode_duration_s and self.recorder.episode_frames >= round(
                self.cfg.episode_duration_s * self.cfg.fps
            ):
                self._end_episode(save=True)
                break

    def _apply(self, command: str) -> None:
        if command == "start":
            self.recording = True
        elif command == "next":
            self._end_episode(save=True)
            self.recording = True
        elif command == "discard":
            self.recorder.discard_episode()
            self._episode_start = None
        elif command == "stop":
            self._end_episode(save=True)
            self.recording = False

    def _end_episode(self, save: bool) -> None:
        if save and self.recorder.episode_frames >= self.cfg.min_episode_frames:
            self.recorder.save_episode()
        else:
            self.recorder.discard_episode()
        self._episode_start = None
        if self.cfg.num_episodes and self.recorder.stats.episodes >= self.cfg.num_episodes:
            self.recording = False
            self.get_logger().info(f"recorded {self.recorder.stats.episodes} episodes; done")
        self.publish_status()

    # ----------------------------------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        s = self.recorder.stats
        return {
            "root": str(self.recorder.root),
            "recording": self.recording,
            "episodes": s.episodes,
            "frames": s.frames,
            "episode_frames": s.episode_frames,
            "skipped_frames": s.skipped_frames,
            "discarded": s.discarded,
            "repeated_frames": s.repeated_frames,
            "corrections": s.corrections,
            "corrections_recorded": s.corrections_recorded,
            "late_corrections": s.late_corrections,
            "instruction": self.language.instruction,
            "failed": s.failed,
            "error": s.last_error,
            "correction_age_max_ms": round(1e3 * self.correction_age_max_s, 1),
            "state_source": self.sensors.summary(),
        }

    def publish_status(self) -> None:
        self._status_pub.publish(String(data=json.dumps(self.status())))

    def close(self) -> None:
        """Save the episode in progress (crash-safe shutdown on SIGINT/SIGTERM) and finalize."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.recorder.close(save=self.cfg.save_partial, min_frames=self.cfg.min_episode_frames)
        # after shutdown the ROS logger can no longer reach /rosout: plain stderr
        print(
            f"[ember_recorder] closed '{self.recorder.root}': {self.recorder.stats.episodes} episodes",
            file=sys.stderr,
        )


def main(args: list[str] | None = None) -> int:
    """Console script ``ember-recorder`` (``--ros-args -p root:=/data/run1 -p task:="..."``)."""
    return ros.run_node(RecorderNode, args, executor="multi")


if __name__ == "__main__":
    raise SystemExit(main())
