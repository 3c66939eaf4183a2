"""Helpers for checking a ROS 2 setup end to end: a go-to-target demo dataset, a tiny trained checkpoint, node
processes with an isolated ROS domain, and a probe node that watches topics.

Used by the tests and ``bench/ros``; also handy to smoke-test an install (``python -m real.testing``): if the
tiny policy drives the mock arm to the target, rclpy, DDS, MuJoCo and torch all work together.
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

import numpy as np

from ember.real.robot import home_state, joint_limits, load_robot

TARGET_OFFSET = (0.35, 0.25, -0.2, 0.3, 0.0, -0.2, 0.3, 0.0, 0.0)
"""Target pose of the demo task, as an offset from the Panda's home pose (arm joints, then fingers)."""
DEMO_STEP = 0.05
"""Largest per-joint move (rad) per frame in the demonstrations (0.5 rad/s at 10 fps)."""


def demo_target(robot: str = "panda") -> np.ndarray:
    spec = load_robot(robot)
    return home_state(spec) + np.asarray(TARGET_OFFSET[: len(spec.state_names)])


def write_reach_dataset(
    root: str | Path,
    robot: str = "panda",
    episodes: int = 24,
    frames: int = 30,
    fps: int = 10,
    seed: int = 0,
    task: str = "reach the target pose",
) -> Path:
    """Demonstrations of moving from near home to :func:`demo_target` at most ``DEMO_STEP`` per joint per frame.

    ``observation.state`` is the 9-D joint state, ``action`` the next joint target (``joint_pos``), as the
    mock arm would record them; the first frames of each episode start from a random pose around home.
    """
    from ember.data import DatasetWriter

    spec = load_robot(robot)
    lim = joint_limits(spec)
    target = demo_target(robot)
    rng = np.random.default_rng(seed)
    names = list(spec.state_names)
    features = {
        "observation.state": {"dtype": "float32", "shape": [len(names)], "names": names},
        "action": {"dtype": "float32", "shape": [len(names)], "names": names},
    }
    with DatasetWriter.create(root, fps=fps, features=features, robot_type=spec.name, use_videos=False) as w:
        for _ in range(episodes):
            q = (
                home_state(spec)
                + rng.uniform(-0.3, 0.3, len(names))
                * np.r_[np.ones(spec.dof), np.zeros(len(names) - spec.dof)]
            )
            q = np.clip(q, lim.lower, lim.upper)
            grip = slice(spec.dof, None)
            for _ in range(frames):
                nxt = q + np.clip(target - q, -DEMO_STEP, DEMO_STEP)
                nxt[grip] = target[grip]
                w.add_frame(
                    {
                        "observation.state": q.astype(np.float32),
                        "action": nxt.astype(np.float32),
                        "task": task,
                    }
                )
                q = nxt + rng.normal(0.0, 0.002, len(names))
                # measured fingers wander a few mm below the commanded opening, as on a real gripper: a state
                # feature that is constant in the data would make min-max normalization blow up any deviation
                q[grip] = np.clip(
                    nxt[grip] - np.abs(rng.normal(0.0, 0.002, len(names) - spec.dof)),
                    lim.lower[grip],
                    lim.upper[grip],
                )
            w.save_episode()
    return Path(root)


def train_reach_policy(out: str | Path, steps: int = 200, seed: int = 0) -> Path:
    """Train a tiny state-only diffusion policy on :func:`write_reach_dataset`; returns the checkpoint folder.

    It predicts the clean action chunk (``prediction_type="sample"``), which learns this low-dimensional,
    deterministic mapping in a few hundred steps (~10 s on one CPU core): in closed loop it reaches the target
    within ~0.02 rad, where an epsilon-predicting one of the same size still wanders by 0.1-0.3 rad.
    """
    from ember.policies import make_policy_config
    from ember.train import OptimConfig, TrainConfig, train

    out = Path(out)
    data = write_reach_dataset(out / "dataset", seed=seed)
    policy = make_policy_config(
        "diffusion",
        horizon=8,
        n_obs_steps=2,
        n_action_steps=4,
        denoiser={"down_dims": (32, 64), "diffusion_step_embed_dim": 32},
        num_inference_steps=8,
        ema={"decay": 0.0},
        prediction_type="sample",
    )
    cfg = TrainConfig(
        dataset=str(data),
        out=str(out / "train"),
        policy=policy,
        steps=steps,
        batch_size=32,
        optim=OptimConfig(lr=3e-3, warmup_steps=20),
        log_every=50,
        seed=seed,
        cpu=True,
        num_threads=1,
    )
    return train(cfg, quiet=True).checkpoint


def cached_reach_policy(folder: str | Path, steps: int = 200) -> Path:
    """:func:`train_reach_policy` into ``folder`` unless a checkpoint is already there (tests share one)."""
    folder = Path(folder)
    ckpt = folder / "train" / "checkpoints" / "last" / "pretrained_model"
    if not (ckpt / "model.safetensors").is_file():
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        train_reach_policy(folder, steps=steps)
    return ckpt


# ------------------------------------------------------------------------------------------------ processes
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
    """A node started as ``python -m real.nodes.<module> --ros-args ...``; output goes to ``log``."""

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
    module: str, params: dict[str, Any], env: dict[str, str], log_dir: str | Path, name: str | None = None
) -> NodeProcess:
    """Start the node configured in ``real.<module>`` (``mock_arm``, ``bridge``, ``policy_node``, ``recorder``)
    as ``python -m real.nodes.<its node module>`` with ROS parameters ``params`` (``-p name:=value``)."""
    from ember.real.entrypoints import EXECUTABLES

    targets = {e.config.__module__: e.module for e in EXECUTABLES.values() if e.config is not None}
    if f"ember.real.{module}" not in targets:
        raise ValueError(f"no node is configured in real.{module}; known: {sorted(targets)}")
    name = name or module
    log = Path(log_dir) / f"{name}.log"
    args = [sys.executable, "-m", targets[f"ember.real.{module}"], "--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={_param_literal(value)}"]
    handle = open(log, "w")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        args, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[1]
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


if __name__ == "__main__":  # a smoke test of this install: train, then print the checkpoint folder
    import tempfile

    print(train_reach_policy(tempfile.mkdtemp(prefix="ember_reach_")))
