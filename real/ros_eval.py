"""Evaluate a sim-trained checkpoint through the ROS 2 stack: policy node -> bridge -> mock arm hosting the task.

Why: ``ember eval`` runs the policy in-process against the sim env; on an arm the same checkpoint goes through the
policy node (observation history, chunking, IK for end-effector actions), DDS, the bridge's safety filter and a
position controller that executes each command over a control period. This runs exactly that path, each node in
its own process on real DDS, in the task's own scene (``ember.real.task_scene``) on the seeds ``ember eval`` uses
(``seed + i``), so the two success rates can be compared episode by episode.

Per episode: pause the policy (``/ember/policy/enable`` false; the bridge holds), reset the mock arm to the seed
(``/mock_arm/reset``; it publishes the episode's instruction), let the arm settle, resume the policy from a fresh
history, and wait until the task's success check reports success or the episode's time (``max_episode_steps`` at
the control rate) runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ember.real.errors import RealError


@dataclass
class RosEvalConfig:
    checkpoint: str = ""
    task: str = "PickPlace"
    split: str = "train"
    num_episodes: int = 10
    seed: int = 100_000
    """Episode ``i`` is seed ``seed + i`` (``ember eval``'s default and rule)."""
    max_episode_steps: int = 0
    """0: the task's default; the episode lasts this many control periods of wall time."""
    rate_hz: float = 0.0
    """Control rate of the policy node and bridge; 0: the checkpoint's training fps."""
    settle_s: float = 0.5
    """Wait after a reset before the policy resumes (the bridge's last command goes stale, states arrive)."""
    out_dir: str = "outputs/ros_eval"
    policy_params: dict[str, Any] = field(default_factory=dict)
    """Extra policy node parameters (e.g. ``n_action_steps``)."""
    bridge_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_episodes < 1:
            raise RealError(f"num_episodes must be >= 1, got {self.num_episodes}")
        if self.max_episode_steps < 0 or self.rate_hz < 0 or self.settle_s < 0:
            raise RealError("max_episode_steps, rate_hz and settle_s must be >= 0")


@dataclass
class RosEpisode:
    index: int
    seed: int
    instruction: str
    success: bool
    seconds: float
    """Wall time from resuming the policy to success (or to the end of the episode)."""
    actions: int
    """Actions the bridge received during the episode."""
    final: dict[str, Any] = field(default_factory=dict)
    """The task's last metrics (goal_error, ...)."""


def checkpoint_setup(checkpoint: str) -> dict[str, Any]:
    """What the mock arm must give the checkpoint: cameras (names, square image size) and the training fps."""
    import json

    from ember.policies.checkpoint_files import resolve_checkpoint_dir
    from ember.real.checkpoint_inputs import checkpoint_cameras

    folder = Path(resolve_checkpoint_dir(checkpoint))
    cameras = checkpoint_cameras(str(folder))
    fps = 10.0  # the tabletop sims' control rate
    try:  # the training dataset's fps, when the dataset is still where training read it
        dataset = json.loads((folder / "train_config.json").read_text())["dataset"]
        fps = float(json.loads((Path(dataset) / "meta" / "info.json").read_text())["fps"])
    except (OSError, KeyError, ValueError, TypeError):
        pass
    return {"cameras": list(cameras.names), "image_size": cameras.image_size or 96, "fps": fps}


def run_ros_eval(cfg: RosEvalConfig, progress: Callable[[str], None] = print) -> list[RosEpisode]:
    """Start mock arm (task mode) + bridge + policy node, run ``num_episodes`` episodes; always stops the nodes."""
    from std_msgs.msg import Bool, String

    from ember.real import ros
    from ember.real.testing.processes import Probe, ros_env, start_node

    if not cfg.checkpoint:
        raise RealError("no checkpoint: pass the folder `ember train` wrote")
    setup = checkpoint_setup(cfg.checkpoint)
    rate = cfg.rate_hz or setup["fps"]
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = ros_env()
    nodes = {}
    probe = None
    episodes: list[RosEpisode] = []
    try:
        nodes["arm"] = start_node(
            "mock_arm",
            {
                "task": cfg.task,
                "split": cfg.split,
                "seed": cfg.seed,
                "cameras": setup["cameras"],
                "image_width": setup["image_size"],
                "image_height": setup["image_size"],
                "camera_rate_hz": rate,
            },
            env,
            out,
        )
        nodes["bridge"] = start_node(
            "bridge",
            {"rate_hz": rate, "policy_timeout_ms": 300.0, "status_rate_hz": 5.0, **cfg.bridge_params},
            env,
            out,
        )
        nodes["policy"] = start_node(
            "policy",
            {"checkpoint": cfg.checkpoint, "rate_hz": rate, **cfg.policy_params},
            env,
            out,
            name="policy",
        )
        probe = Probe("ember_ros_eval", domain_id=int(env["ROS_DOMAIN_ID"]))
        for topic in ("/mock_arm/task", "/ember/bridge/status", "/ember/policy/status"):
            probe.subscribe(topic, String, ros.qos_latched())
        reset = probe.publisher("/mock_arm/reset", String, ros.qos_command())
        enable = probe.publisher("/ember/policy/enable", Bool, ros.qos_latched())

        def alive() -> bool:
            dead = [k for k, n in nodes.items() if not n.alive()]
            if dead:
                raise RealError(f"{dead} exited:\n" + "\n".join(nodes[k].output()[-3000:] for k in dead))
            return True

        def logs() -> str:
            return "\n".join(f"--- {k}\n{n.output()[-2000:]}" for k, n in nodes.items())

        probe.wait_for(
            lambda: (
                alive()
                and probe.json("/ember/policy/status").get("ticks", 0) > 0
                and reset.get_subscription_count() > 0
                and enable.get_subscription_count() > 0
                and probe.json("/ember/bridge/status") != {}
            ),
            180,
            "the stack to start\n" + logs(),
        )
        task_steps = cfg.max_episode_steps or _task_steps(cfg.task)
        for i in range(cfg.num_episodes):
            seed = cfg.seed + i
            enable.publish(Bool(data=False))
            probe.wait_for(
                lambda: probe.json("/ember/policy/status").get("enabled") is False, 10, "the pause"
            )
            previous = probe.json("/mock_arm/task").get("episode", -1)
            reset.publish(String(data=str(seed)))
            probe.wait_for(
                lambda s=seed, p=previous: (
                    probe.json("/mock_arm/task").get("seed") == s
                    and probe.json("/mock_arm/task").get("episode", -1) > p
                ),
                20,
                f"the reset to seed {seed}",
            )
            probe.spin(cfg.settle_s)
            actions_before = probe.json("/ember/bridge/status").get("actions", 0)
            enable.publish(Bool(data=True))
            start = time.monotonic()
            deadline = start + task_steps / rate
            status = probe.json("/mock_arm/task")
            while time.monotonic() < deadline and alive():
                probe.spin(0.05)
                status = probe.json("/mock_arm/task")
                if status.get("succeeded"):
                    break
            seconds = time.monotonic() - start
            episode = RosEpisode(
                i,
                seed,
                status.get("instruction", ""),
                bool(status.get("succeeded")),
                round(seconds, 2),
                probe.json("/ember/bridge/status").get("actions", 0) - actions_before,
                {k: v for k, v in status.items() if k not in ("task", "split", "instruction")},
            )
            episodes.append(episode)
            progress(
                f"ros eval: episode {i} seed {seed}: {'success' if episode.success else 'failure'} "
                f"after {seconds:.1f} s, {episode.actions} actions"
            )
        enable.publish(Bool(data=False))
        write_stack_status(
            out, {"policy": probe.json("/ember/policy/status"), "bridge": probe.json("/ember/bridge/status")}
        )
    finally:
        if probe is not None:
            probe.close()
        for node in reversed(list(nodes.values())):
            node.stop()
    return episodes


STACK_STATUS = "stack_status.json"
"""The policy node's and bridge's last status after the run (inference latency, safety-filter counts), in ``out_dir``."""


def write_stack_status(out: Path, status: dict[str, Any]) -> None:
    import json

    (out / STACK_STATUS).write_text(json.dumps(status, indent=1) + "\n")


def control_loop_summary(out_dir: str | Path) -> dict[str, Any]:
    """The control loop of a finished run, from its stack status: inference latency (policy node), observation ->
    command latency and every command the bridge's safety filter rejected or clamped, by reason."""
    import json

    path = Path(out_dir) / STACK_STATUS
    if not path.exists():
        raise RealError(f"{path} does not exist: run_ros_eval writes it when its episodes finish")
    status = json.loads(path.read_text())
    policy, bridge = status.get("policy", {}), status.get("bridge", {})
    from ember.real.safety import CLAMPS, REJECTIONS

    safety = dict(bridge.get("safety", {}))
    return {
        "rejected": {k: safety[k] for k in REJECTIONS if safety.get(k)},
        "clamped": {k: safety[k] for k in CLAMPS if safety.get(k)},
        "inference_ms": policy.get("inference_ms", {}),
        "dropped_actions": policy.get("dropped_actions", 0),
        "obs_to_command_ms": bridge.get("obs_to_command_ms", {}),
        "actions": bridge.get("actions", 0),
        "commands": bridge.get("commands", 0),
        "safety": safety,
    }


def _task_steps(task: str) -> int:
    from ember.real.task_scene import TaskScene

    scene = TaskScene(task, cameras=())
    try:
        return int(scene.env.max_episode_steps)
    finally:
        scene.close()


def to_json(cfg: RosEvalConfig, episodes: list[RosEpisode]) -> dict[str, Any]:
    n = len(episodes)
    return {
        "config": asdict(cfg),
        "success_rate": sum(e.success for e in episodes) / n if n else 0.0,
        "episodes": [asdict(e) for e in episodes],
    }
