"""``ember deploy``: the bridge, the policy node (and the mock arm, the recorder) in ONE process.

For users who installed ember with pip only (no ``ros2 launch``): the same node classes as the console scripts,
added to one rclpy ``MultiThreadedExecutor`` in a private context. Nodes still talk over DDS (so a real arm's
ros2_control stack on the same ROS domain sees the same topics), and a ROS params file in the
``launch/config/*.yaml`` format can tune any node's parameters.

Writes a run folder (``config.json``, ``metrics.json`` with the bridge's safety counters and latencies, the
policy's counters and, with the mock arm, its audit of every command it received).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ember.real.checkpoint_inputs import checkpoint_cameras
from ember.real.errors import RealError
from ember.real.ros import CAMERA_PREFIX, CONTROLLER_TOPIC, JOINT_STATES_TOPIC, require_rclpy
from ember.verbs import Verb


@dataclass
class DeployConfig:
    """Fields of ``ember deploy`` (``--checkpoint=... --use_mock=false --duration_s=60``)."""

    checkpoint: str = ""
    """Folder written by ``ember train`` (its ``pretrained_model/`` or the run folder)."""
    robot: str = "panda"
    rate_hz: float = 10.0
    """Control rate (the training dataset's fps); also the bridge's command rate."""
    use_mock: bool = True
    """Also run the MuJoCo mock arm (false: command the real arm's controller on ``controller_topic``)."""
    task: str = ""
    controller_topic: str = CONTROLLER_TOPIC
    joint_states_topic: str = JOINT_STATES_TOPIC
    cameras: tuple[str, ...] = ()
    """Cameras the policy reads; empty: the checkpoint's ``observation.images.<cam>`` names."""
    camera_topic_prefix: str = CAMERA_PREFIX
    """Camera ``<cam>`` publishes ``<prefix>/<cam>/image_raw`` (remap a real camera driver's topics to this)."""
    record: str = ""
    """If set, also run the recorder into this (new) dataset folder."""
    duration_s: float = 0.0
    """Stop after this many seconds (0: run until Ctrl-C)."""
    device: str = "cpu"
    seed: int = 0
    params_file: str = ""
    """A ROS 2 params YAML (``launch/config/*.yaml`` format) applied to every node."""
    out: str = ""
    """Run folder; empty: outputs/deploy/<date>_<time>."""


def run_deploy(cfg: DeployConfig) -> dict[str, Any]:
    """Run until ``duration_s`` or Ctrl-C; returns (and writes to ``<out>/metrics.json``) a summary."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    rclpy = require_rclpy()
    from rclpy.executors import SingleThreadedExecutor

    from ember.config import save_config
    from ember.real.bridge_params import BridgeConfig
    from ember.real.mock_arm_params import MockArmConfig
    from ember.real.nodes.bridge_node import BridgeNode
    from ember.real.nodes.policy_node import PolicyNode
    from ember.real.policy_params import PolicyNodeConfig
    from ember.real.recorder_params import RecorderConfig
    from ember.runs import default_out, prepare_run_folder

    if not cfg.checkpoint:
        raise RealError("no checkpoint: pass --checkpoint=<folder written by `ember train`>.")
    if cfg.params_file and not Path(cfg.params_file).is_file():
        raise RealError(f"params_file '{cfg.params_file}' does not exist.")
    out = prepare_run_folder(cfg.out or default_out("deploy"))
    save_config(cfg, out)
    cameras = cfg.cameras or checkpoint_cameras(cfg.checkpoint).names

    args = ["ember_deploy"] + (["--ros-args", "--params-file", cfg.params_file] if cfg.params_file else [])
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    nodes: list[Any] = []
    summary: dict[str, Any] = {}
    try:
        common = {"context": context}
        bridge = BridgeNode(
            BridgeConfig(
                robot=cfg.robot,
                rate_hz=cfg.rate_hz,
                controller_topic=cfg.controller_topic,
                joint_states_topic=cfg.joint_states_topic,
            ),
            **common,
        )
        policy = PolicyNode(
            PolicyNodeConfig(
                checkpoint=cfg.checkpoint,
                robot=cfg.robot,
                rate_hz=cfg.rate_hz,
                device=cfg.device,
                seed=cfg.seed,
                task=cfg.task,
                cameras=cameras,
                camera_topic_prefix=cfg.camera_topic_prefix,
                joint_states_topic=cfg.joint_states_topic,
            ),
            **common,
        )
        nodes += [policy, bridge]
        recorder = None
        if cfg.record:
            from ember.real.nodes.recorder_node import RecorderNode

            recorder = RecorderNode(
                RecorderConfig(
                    root=cfg.record,
                    robot=cfg.robot,
                    fps=round(cfg.rate_hz),
                    task=cfg.task,
                    cameras=cameras or ("front",),
                    camera_topic_prefix=cfg.camera_topic_prefix,
                    command_topic=cfg.controller_topic,
                    joint_states_topic=cfg.joint_states_topic,
                ),
                **common,
            )
            nodes.append(recorder)
        # The mock arm last: its camera thread loads Mesa's GL (with its own LLVM); importing torch's triton
        # (done while loading the checkpoint) after that crashes the process. Policy first, GL second.
        mock = None
        if cfg.use_mock:
            from ember.real.nodes.mock_arm_node import MockArmNode

            mock = MockArmNode(
                MockArmConfig(
                    robot=cfg.robot,
                    cameras=cameras or ("front",),
                    camera_topic_prefix=cfg.camera_topic_prefix,
                    joint_states_topic=cfg.joint_states_topic,
                    controller_topic=cfg.controller_topic,
                ),
                **common,
            )
            nodes.append(mock)
        # One single-threaded executor per node, each on its own thread. A shared MultiThreadedExecutor busy-loops
        # whenever a ready entity's callback group is busy, and that loop holds the GIL the physics thread and the
        # policy's inference need (a starved arm published 7 of 100 states/s on a 2-core machine).
        executors = [SingleThreadedExecutor(context=context) for _ in nodes]
        threads = []
        for node, executor in zip(nodes, executors, strict=True):
            executor.add_node(node)
            thread = threading.Thread(
                target=_spin, args=(executor,), name=f"spin_{node.get_name()}", daemon=True
            )
            thread.start()
            threads.append(thread)
        end = time.monotonic() + cfg.duration_s if cfg.duration_s > 0 else float("inf")
        try:
            while context.ok() and time.monotonic() < end and all(t.is_alive() for t in threads):
                time.sleep(min(0.1, max(0.0, end - time.monotonic())))
        except KeyboardInterrupt:
            pass
        summary = {"bridge": bridge.status(), "policy": policy.status()}
        if mock is not None:
            summary["mock_arm"] = mock.stats()
        if recorder is not None:
            recorder.close()
            summary["recorder"] = recorder.status()
        for executor in executors:
            executor.shutdown(timeout_sec=1.0)
        for thread in threads:
            thread.join(timeout=2.0)
    finally:
        for node in reversed(nodes):
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["out"] = str(out)
    return summary


def _spin(executor: Any) -> None:
    """Spin one node's executor until it (or the context) shuts down."""
    from rclpy.executors import ExternalShutdownException, ShutdownException

    try:
        executor.spin()
    except (ExternalShutdownException, ShutdownException):
        pass


def _run_verb(cfg: DeployConfig) -> int:
    print(json.dumps(run_deploy(cfg), indent=2, default=str))
    return 0


VERB = Verb(
    "deploy",
    "run mock arm (or a real one) + bridge + policy node (+ recorder) in one process over ROS 2",
    DeployConfig,
    _run_verb,
)
"""``ember deploy`` (registered through the ``ember.verbs`` entry point in pyproject.toml)."""
