"""Node processes on an isolated ROS graph, and a probe node that watches topics (for the tests and ``bench/ros``).

Each node runs in its own process on real DDS (loopback, a random domain: :func:`ros_env`), as ``ros2 launch``
would start it; :class:`Probe` is an rclpy node in the calling process that publishes and records messages.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def ros_env(domain_id: int | None = None) -> dict[str, str]:
    """Environment for an isolated ROS graph on loopback (a random domain unless given)."""
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else random.SystemRandom().randint(1, 100))
    env.setdefault("MUJOCO_GL", "egl")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class NodeProcess:
    """A node started as ``python -m ember.real.nodes.<node>_node --ros-args ...``; output goes to ``log``."""

    name: str
    proc: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (as Ctrl-C / ros2 launch do), then SIGKILL after ``timeout``; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return int(self.proc.returncode)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_node(
    node: str, params: dict[str, Any], env: dict[str, str], log_dir: str | Path, name: str | None = None
) -> NodeProcess:
    """Start node ``node`` (``mock_arm``, ``bridge``, ``policy``, ``recorder``: its parameters are in
    ``ember.real.<node>_params``) as ``python -m ember.real.nodes.<node>_node`` with ROS parameters ``params``
    (``-p name:=value``); its output goes to ``<log_dir>/<name>.log`` (``name`` defaults to ``node``)."""
    from ember.real.entrypoints import EXECUTABLES

    targets = {e.config.__module__: e.module for e in EXECUTABLES.values() if e.config is not None}
    params_module = f"ember.real.{node}_params"
    if params_module not in targets:
        known = sorted(m.removeprefix("ember.real.").removesuffix("_params") for m in targets)
        raise ValueError(f"no node has its parameters in {params_module}; known nodes: {known}")
    name = name or node
    log = Path(log_dir) / f"{name}.log"
    args = [sys.executable, "-m", targets[params_module], "--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={_param_literal(value)}"]
    handle = open(log, "w")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        args, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2]
    )
    return NodeProcess(name, proc, log)


def _param_literal(value: Any) -> str:
    """A ``-p name:=value`` literal (YAML): lists as [a, b], strings quoted when they could parse as YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_param_literal(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


# ------------------------------------------------------------------------------------------------ probe
class Probe:
    """An rclpy node in the calling process: publishes and records messages on named topics.

    ``latest[topic]`` holds the last message, ``counts[topic]`` how many arrived, ``log[topic]`` (if asked)
    every message with its receipt time.
    """

    def __init__(self, name: str = "ember_probe", domain_id: int | None = None) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.latest: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.log: dict[str, list[tuple[float, Any]]] = {}
        self._pubs: dict[str, Any] = {}

    def subscribe(
        self,
        topic: str,
        msg_type: type,
        qos: Any,
        keep: bool = False,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        self.counts[topic] = 0
        if keep:
            self.log[topic] = []

        def on_msg(msg: Any) -> None:
            self.latest[topic] = msg
            self.counts[topic] += 1
            if keep:
                self.log[topic].append((time.monotonic(), msg))
            if callback is not None:
                callback(msg)

        self.node.create_subscription(msg_type, topic, on_msg, qos)

    def publisher(self, topic: str, msg_type: type, qos: Any) -> Any:
        if topic not in self._pubs:
            self._pubs[topic] = self.node.create_publisher(msg_type, topic, qos)
        return self._pubs[topic]

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.02, max(0.0, end - time.monotonic())))

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.02)

    def json(self, topic: str) -> dict[str, Any]:
        msg = self.latest.get(topic)
        return {} if msg is None else json.loads(msg.data)

    def close(self) -> None:
        import rclpy

        self.executor.remove_node(self.node)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def stop_all(nodes: Sequence[NodeProcess]) -> None:
    for node in nodes:
        node.stop()
