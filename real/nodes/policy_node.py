"""``ember-policy-node``: run a trained checkpoint on the arm at a fixed control rate.

Each control tick (``rate_hz``, which should equal the training dataset's fps): build the observation from the
latest joint state and images (skip the tick if they are stale), push it into the policy's history, take the
next action of the current chunk (``ember.real.chunking``: chunks are computed ahead in a worker thread and
cross-faded) and publish it on ``/ember/action`` for the bridge, stamped with the observation's stamp.
The instruction comes from ``/ember/instruction`` (latched) and, while fresh, from operator corrections on
``/ember/correction`` (``ember.real.language``).

The node never talks to the controller: the bridge (and its safety filter) does.

Its parameters are in ``ember.real.policy_params``, the policy runner (observation history, chunk inference)
in ``ember.real.policy_logic``.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String

from ember.real import ros
from ember.real.chunking import ChunkConfig, ChunkExecutor
from ember.real.errors import RealError
from ember.real.histogram import LatencyHistogram
from ember.real.language import LanguageState
from ember.real.nodes.sensors import subscribe_observations
from ember.real.observation import STATE_KEY, ObservationBuilder, Staleness
from ember.real.params import declare_config
from ember.real.policy_logic import PolicyRunner, load_checkpoint
from ember.real.policy_params import NODE_NAME, PolicyNodeConfig
from ember.real.robot import load_robot
from ember.robots.ee_control import EndEffectorControlConfig, EndEffectorController
from ember.robots.errors import RobotError
from ember.robots.spec import JOINT_POS

WAITING_LOG_PERIOD_S = 2.0
"""How often the node, while its observation is incomplete or stale, says which topic it waits for."""


class PolicyNode(Node):
    """Fixed-rate policy execution with chunk prefetching and cross-fading."""

    def __init__(
        self,
        defaults: PolicyNodeConfig | None = None,
        node_name: str = NODE_NAME,
        policy: Any = None,
        **node_kwargs: Any,
    ) -> None:
        super().__init__(node_name, **node_kwargs)
        self.cfg = cfg = declare_config(self, PolicyNodeConfig, defaults)
        torch.set_num_threads(max(1, cfg.num_threads))
        torch.manual_seed(cfg.seed)
        self.robot = load_robot(cfg.robot)
        self.names = self.robot.state_names
        model = policy if policy is not None else load_checkpoint(cfg.checkpoint, cfg.device)
        if cfg.freeze and hasattr(model, "freeze_for_inference"):
            frozen = model.freeze_for_inference(batch_size=1)
            if frozen:
                self.get_logger().info(f"inference: froze {frozen} with TorchScript")
        self.runner = PolicyRunner(model, seed=cfg.seed)
        self.runner.check_robot(len(self.names))
        self.ee: EndEffectorController | None = None
        """End-effector checkpoints (``ee_delta`` / ``ee_pos``): the sims' controller turns each action into joint
        targets from the measured joints, so the bridge and its safety filter see joint_pos commands as always."""
        if self.runner.action_space != JOINT_POS:
            self.ee = EndEffectorController(
                self.robot,
                self.runner.action_space,
                EndEffectorControlConfig(tuple(cfg.ee_workspace_low), tuple(cfg.ee_workspace_high)),
            )
            if self.ee.action_dim != self.runner.action_dim:
                raise RealError(
                    f"the checkpoint outputs {self.runner.action_dim}-D {self.runner.action_space} "
                    f"actions; {self.robot.name} end-effector control takes {self.ee.action_dim}-D"
                )
        cameras = cfg.cameras or tuple(self.runner.cameras)
        self.observations = ObservationBuilder(
            self.names,
            cameras,
            max_state_age_s=cfg.max_state_age_ms / 1e3,
            max_image_age_s=cfg.max_image_age_ms / 1e3,
            check_stamps=cfg.check_stamps,
        )
        self.language = LanguageState(
            cfg.task, hold_s=cfg.correction_hold_s if cfg.follow_corrections else 0.0
        )
        if cfg.n_action_steps:
            self.runner.set_n_action_steps(cfg.n_action_steps)
        n_steps = self.runner.n_action_steps
        self.chunks = ChunkExecutor(
            ChunkConfig(
                n_action_steps=n_steps,
                prefetch_steps=min(cfg.prefetch_steps, n_steps - 1),
                blend_steps=cfg.blend_steps,
            )
        )
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy_inference")
        self._pending: tuple[Future, int, float] | None = None
        self.period = 1.0 / cfg.rate_hz
        self.counters = {
            "ticks": 0,
            "published": 0,
            "stale_ticks": 0,
            "starved_ticks": 0,
            "missed_ticks": 0,
            "late_ticks": 0,
            "chunks": 0,
            "errors": 0,
            "paused_ticks": 0,
        }
        self.inference_ms: deque[float] = deque(maxlen=1000)
        self.histograms = {
            "inference_ms": LatencyHistogram(),
            "tick_interval_ms": LatencyHistogram(),
            "tick_ms": LatencyHistogram(),
        }
        """Since start: chunk inference, the time between ticks (the timer's jitter), the tick's own work."""
        self._last_tick: float | None = None
        self._stale = True
        self.last_staleness = ""
        self._waiting_logged_at = -math.inf
        """When the node last said which input it waits for (every ``WAITING_LOG_PERIOD_S`` while it waits)."""

        self._action_pub = self.create_publisher(JointState, cfg.action_topic, ros.qos_command())
        self._status_pub = self.create_publisher(String, cfg.status_topic, ros.qos_latched())
        self.sensors = subscribe_observations(
            self,
            self.observations,
            cfg.joint_states_topic,
            cfg.camera_topic_prefix,
            cameras,
            expected_state_publisher=cfg.expected_state_publisher,
            reset_topic=cfg.estop_reset_topic,
            on_source_change=lambda fault: self._restart() if fault is not None else None,
        )
        self.create_subscription(
            String, cfg.instruction_topic, lambda m: self.language.set_instruction(m.data), ros.qos_latched()
        )
        self.enabled = True
        self.create_subscription(Bool, cfg.enable_topic, self._on_enable, ros.qos_latched())
        if cfg.follow_corrections:
            self.create_subscription(
                String,
                cfg.correction_topic,
                lambda m: self.language.add_correction(m.data),
                ros.qos_command(),
            )
        self.create_timer(self.period, self._tick)
        self.create_timer(1.0, self.publish_status)
        self.get_logger().info(
            f"policy {type(self.runner.policy).__name__} from '{cfg.checkpoint}' at {cfg.rate_hz:g} Hz, "
            f"{n_steps} actions per chunk, inputs {self.runner.keys}, cameras {list(cameras)} -> {cfg.action_topic}"
        )

    # ----------------------------------------------------------------------------------------- control loop
    def _tick(self) -> None:
        now = time.monotonic()
        c = self.counters
        c["ticks"] += 1
        if self._last_tick is not None:
            self.histograms["tick_interval_ms"].add((now - self._last_tick) * 1e3)
            periods = (now - self._last_tick) / self.period
            if periods > 1.5:
                c["late_ticks"] += 1
            # a late tick is not a lost one: the timer keeps its schedule, so the next tick comes on time; ticks
            # are lost when a whole period passes without one (the timer skips a period it is too late for)
            c["missed_ticks"] += max(0, int(periods + 0.25) - 1)
        self._last_tick = now
        try:
            self._run_tick(now)
        finally:
            self.histograms["tick_ms"].add((time.monotonic() - now) * 1e3)

    def _on_enable(self, msg: Bool) -> None:
        enable = bool(msg.data)
        if enable == self.enabled:
            return
        self.enabled = enable
        self._restart()  # paused or resumed: what is queued describes a state that is gone
        self.get_logger().info("policy resumed" if enable else "policy paused (no actions until enabled)")
        self.publish_status()

    def _topic_of(self, staleness: Staleness) -> str:
        """The topic that feeds the part ``staleness`` names (what a user checks with ``ros2 topic hz``)."""
        if staleness.key.startswith("image '"):
            return ros.image_topic(self.cfg.camera_topic_prefix, staleness.key.split("'")[1])
        return self.cfg.joint_states_topic

    def _run_tick(self, now: float) -> None:
        c = self.counters
        if not self.enabled:
            c["paused_ticks"] += 1
            return
        obs = self.observations.build(now)
        if isinstance(obs, Staleness):
            c["stale_ticks"] += 1
            self.last_staleness = str(obs)
            if not self._stale:
                self.get_logger().warning(f"observation stale ({obs}); pausing the policy")
                self._restart()
            elif now - self._waiting_logged_at >= WAITING_LOG_PERIOD_S:
                self._waiting_logged_at = now
                self.get_logger().warning(
                    f"waiting for {self._topic_of(obs)}: {obs}; no actions until it arrives"
                )
            return
        if self._stale:
            self.get_logger().info("observations fresh; running the policy")
            self._stale = False
        task = self.language.active(now)
        obs.data["task"] = task
        self.runner.push(obs.data)
        self._collect_chunk()
        if self._pending is None and self.chunks.wants_chunk():
            window = self.runner.snapshot(task)
            self._pending = (self._worker.submit(self._infer, window), self.chunks.step, now)
        action = self.chunks.pop()
        if action is None:
            if c["chunks"]:
                c["starved_ticks"] += 1
            return
        if self.ee is not None:
            try:
                action = self.ee(action, obs.data[STATE_KEY])
            except RobotError as exc:
                c["errors"] += 1
                self.get_logger().error(f"end-effector action not executed: {exc}", throttle_duration_sec=1.0)
                return
        msg = JointState()
        msg.header.stamp = ros.sec_to_stamp(obs.stamp)
        msg.name = list(self.names)
        msg.position = action.tolist()
        self._action_pub.publish(msg)
        c["published"] += 1

    def _infer(self, window: dict[str, Any]) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        chunk = self.runner.infer(window)
        return chunk, (time.perf_counter() - t0) * 1e3

    def _collect_chunk(self) -> None:
        if self._pending is None or not self._pending[0].done():
            return
        future, start_step, _ = self._pending
        self._pending = None
        try:
            chunk, ms = future.result()
        except Exception as exc:  # a failing policy must not kill the node silently
            self.counters["errors"] += 1
            self.get_logger().error(f"policy inference failed: {exc!r}", throttle_duration_sec=1.0)
            return
        self.inference_ms.append(ms)
        self.histograms["inference_ms"].add(ms)
        self.chunks.add_chunk(chunk, start_step)
        self.counters["chunks"] += 1

    def _restart(self) -> None:
        """After stale observations: drop queued actions and history (they describe a past state)."""
        self._stale = True
        self.chunks.reset()
        if self.ee is not None:
            self.ee.reset()  # the arm may have moved meanwhile: continue from where it is
        self.runner.reset()
        if self._pending is not None:
            self._pending[0].cancel()
            self._pending = None

    # ----------------------------------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        ms = np.fromiter(self.inference_ms, float) if self.inference_ms else np.zeros(0)
        inference = (
            {
                "p50": round(float(np.percentile(ms, 50)), 2),
                "p99": round(float(np.percentile(ms, 99)), 2),
                "n": int(ms.size),
            }
            if ms.size
            else {}
        )
        return {
            **self.counters,
            "enabled": self.enabled,
            "dropped_actions": self.chunks.dropped_actions,
            "task": self.language.active(),
            "inference_ms": inference,
            "staleness": self.last_staleness,
            "state_source": self.sensors.summary(),
            "histograms": {k: h.to_json() for k, h in self.histograms.items()},
        }

    def publish_status(self) -> None:
        self._status_pub.publish(String(data=json.dumps(self.status())))

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


def main(args: list[str] | None = None) -> int:
    """Console script ``ember-policy-node`` (accepts ``--ros-args -p checkpoint:=... --params-file f.yaml``)."""
    return ros.run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
