"""``ember-mock-arm``: a MuJoCo arm that looks like ros2_control + joint_trajectory_controller from outside.

It publishes what a real ros2_control arm publishes (``sensor_msgs/JointState`` on ``/joint_states`` at a set
rate, camera ``Image`` + ``CameraInfo``, the URDF on ``/robot_description``) and follows
``trajectory_msgs/JointTrajectory`` on ``/joint_trajectory_controller/joint_trajectory`` with JTC's semantics
(``ember.real.trajectory``). Physics runs in real time in its own thread (catching up after a slow wake-up, so sim
time never drifts from wall time); cameras render in another thread with their own GL context and ``MjData``.

Because it *is* the arm, it also audits every command it receives (``CommandAuditor``: limits, jumps,
velocities) and publishes the counts on ``/mock_arm/stats``: that is the ground truth the fault-injection tests
read. ``/mock_arm/inject`` (``std_msgs/String``) simulates sensor faults: ``drop_state <s>`` stops joint states
for ``s`` seconds, ``delay_stamp <s>`` stamps them ``s`` seconds in the past (0 turns it off).

Its parameters are in ``ember.real.mock_arm_params``, the ROS-free simulation in ``ember.real.mock_arm_logic``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from ember.real import ros
from ember.real.checkpoint_inputs import checkpoint_cameras
from ember.real.errors import RealError
from ember.real.mock_arm_logic import CameraThread, MockArmSim
from ember.real.mock_arm_params import NODE_NAME, MockArmConfig
from ember.real.params import declare_config
from ember.real.scene import CAMERAS
from ember.real.trajectory import TrajectoryPoint


def cameras_of_checkpoint(cfg: MockArmConfig) -> MockArmConfig:
    """``cfg`` with the cameras and image size its ``checkpoint`` reads (unchanged without one)."""
    if not cfg.checkpoint:
        return cfg
    cameras = checkpoint_cameras(cfg.checkpoint)
    if not cameras.names:
        raise RealError(f"checkpoint {cfg.checkpoint} reads no camera: leave the mock arm's checkpoint empty")
    size = cameras.image_size
    return dataclasses.replace(cfg, cameras=cameras.names, image_width=size, image_height=size)


class MockArmNode(Node):
    """ROS face of :class:`MockArmSim`."""

    def __init__(
        self, defaults: MockArmConfig | None = None, node_name: str = NODE_NAME, **node_kwargs: Any
    ) -> None:
        super().__init__(node_name, **node_kwargs)
        self.cfg = cfg = cameras_of_checkpoint(declare_config(self, MockArmConfig, defaults))
        if cfg.checkpoint:
            self.get_logger().info(
                f"cameras {list(cfg.cameras)} at {cfg.image_width}x{cfg.image_height}, as {cfg.checkpoint} reads them"
            )
        unknown = [c for c in cfg.cameras if c not in CAMERAS]
        if unknown and not cfg.task:  # a task's cameras are checked by the task's env
            raise RealError(f"unknown cameras {unknown}; the mock scene has {list(CAMERAS)}")
        self.sim = MockArmSim(cfg)
        self._stop = threading.Event()
        self._drop_until = 0.0
        self._stamp_delay = 0.0
        self.state_msgs = 0
        self._js_pub = self.create_publisher(JointState, cfg.joint_states_topic, ros.qos_command())
        self._stats_pub = self.create_publisher(String, cfg.stats_topic, ros.qos_latched())
        self._img_pubs = {
            c: self.create_publisher(Image, ros.image_topic(cfg.camera_topic_prefix, c), 2)
            for c in cfg.cameras
        }
        self._info_pubs = {
            c: self.create_publisher(CameraInfo, ros.camera_info_topic(cfg.camera_topic_prefix, c), 2)
            for c in cfg.cameras
        }
        self.create_subscription(
            JointTrajectory, cfg.controller_topic, self._on_trajectory, ros.qos_command()
        )
        self.create_subscription(String, cfg.inject_topic, self._on_inject, ros.qos_command())
        if cfg.publish_robot_description:
            pub = self.create_publisher(String, "/robot_description", ros.qos_latched())
            with open(self.sim.robot.description_path) as f:
                pub.publish(String(data=f.read()))
            self._description_pub = pub
        self.create_timer(0.2, self._publish_stats)
        if cfg.task:
            self._task_pub = self.create_publisher(String, cfg.task_topic, ros.qos_latched())
            self._instruction_pub = self.create_publisher(String, cfg.instruction_topic, ros.qos_latched())
            self.create_subscription(String, cfg.reset_topic, self._on_reset, ros.qos_command())
            self.create_timer(0.1, self._publish_task)
            self._succeeded = False
            self._instruction_pub.publish(String(data=self.sim.task.instruction))
        self._physics = threading.Thread(target=self._physics_loop, name="mock_arm_physics", daemon=True)
        self._physics.start()
        self._cameras = None
        if cfg.cameras:
            self._cameras = CameraThread(self.sim, self._publish_image, self._stop)
            self._cameras.start()
        self.get_logger().info(
            f"mock {self.sim.robot.name}: {len(self.sim.names)} joints, states at {cfg.state_rate_hz:g} Hz on "
            f"{cfg.joint_states_topic}, cameras {list(cfg.cameras)} at {cfg.camera_rate_hz:g} Hz, "
            f"following {cfg.controller_topic}"
        )

    # ------------------------------------------------------------------------------- threads
    def _physics_loop(self) -> None:
        period = 1.0 / self.cfg.state_rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self.sim.advance(now)
            if now >= self._drop_until:
                self._publish_state()
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -period:
                next_t = time.monotonic()
            self._stop.wait(max(0.0, delay))

    def _publish_state(self) -> None:
        q, v, e = self.sim.state()
        msg = JointState()
        msg.header.stamp = ros.sec_to_stamp(time.time() - self._stamp_delay)
        msg.header.frame_id = self.cfg.frame_id
        msg.name = list(self.sim.names)
        msg.position, msg.velocity, msg.effort = q.tolist(), v.tolist(), e.tolist()
        self._js_pub.publish(msg)
        self.state_msgs += 1

    def _publish_image(self, cam: str, img: np.ndarray, stamp: float) -> None:
        st = ros.sec_to_stamp(stamp)
        frame = f"{cam}_optical_frame"
        self._img_pubs[cam].publish(ros.numpy_to_image(img, st, frame))
        fovy = self.sim.task.camera_fovy(cam) if self.sim.task is not None else float(CAMERAS[cam][2])
        self._info_pubs[cam].publish(ros.camera_info(img.shape[1], img.shape[0], fovy, st, frame))

    # ------------------------------------------------------------------------------- callbacks
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        points = [
            TrajectoryPoint(ros.duration_to_sec(p.time_from_start), list(p.positions)) for p in msg.points
        ]
        problem = self.sim.command(list(msg.joint_names), points, time.monotonic())
        if problem:
            self.get_logger().error(problem, throttle_duration_sec=1.0)

    def _on_inject(self, msg: String) -> None:
        parts = msg.data.split()
        try:
            kind, value = parts[0], float(parts[1])
        except (IndexError, ValueError):
            self.get_logger().error(
                f"inject: expected 'drop_state <s>' or 'delay_stamp <s>', got {msg.data!r}"
            )
            return
        if kind == "drop_state":
            self._drop_until = time.monotonic() + value
        elif kind == "delay_stamp":
            self._stamp_delay = value
        else:
            self.get_logger().error(f"inject: unknown fault {kind!r}")
            return
        self.get_logger().warning(f"fault injected: {msg.data}")

    def _on_reset(self, msg: String) -> None:
        text = msg.data.strip()
        try:
            seed = int(text) if text else (self.sim.task.seed or 0) + 1
        except ValueError:
            self.get_logger().error(
                f"reset: expected a seed (an integer) or an empty string, got {msg.data!r}"
            )
            return
        self.sim.reset_episode(seed)
        self._succeeded = False
        self._instruction_pub.publish(String(data=self.sim.task.instruction))
        self.get_logger().info(
            f"episode {self.sim.task.episode_index}: {self.cfg.task} seed {seed} "
            f"({self.cfg.split}): {self.sim.task.instruction!r}"
        )
        self._publish_task()

    def task_status(self) -> dict[str, Any]:
        metrics = self.sim.evaluate()
        self._succeeded = self._succeeded or bool(metrics.get("is_success", False))
        t = self.sim.task
        return {
            "task": self.cfg.task,
            "split": self.cfg.split,
            "seed": t.seed,
            "episode": t.episode_index,
            "instruction": t.instruction,
            **metrics,
            "succeeded": self._succeeded,
        }

    def _publish_task(self) -> None:
        self._task_pub.publish(String(data=json.dumps(self.task_status())))

    def stats(self) -> dict[str, Any]:
        q = self.sim.state()[0]
        return {
            **self.sim.auditor.summary(),
            "accepted": self.sim.follower.accepted,
            "refused": self.sim.follower.refused,
            "state_msgs": self.state_msgs,
            "camera_frames": self._cameras.frames if self._cameras else 0,
            "physics_overruns": self.sim.overruns,
            "sim_time": self.sim.steps / self.sim.physics_hz,
            "position": [round(float(x), 6) for x in q],
            "target": [round(float(x), 6) for x in self.sim.follower.final_target()],
        }

    def _publish_stats(self) -> None:
        self._stats_pub.publish(String(data=json.dumps(self.stats())))

    def close(self) -> None:
        self._stop.set()
        self._physics.join(timeout=2.0)
        if self._cameras is not None:
            self._cameras.join(timeout=2.0)


def main(args: list[str] | None = None) -> int:
    """Console script ``ember-mock-arm`` (accepts ``--ros-args -p name:=value --params-file f.yaml``)."""
    return ros.run_node(MockArmNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
