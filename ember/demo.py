"""``ember demo`` / ``make demo``: the whole loop once, end to end, in a few minutes on a CPU.

collect expert demonstrations (MuJoCo, Franka Panda) -> LeRobot v3 dataset -> train a policy -> evaluate it and an
untrained copy on the same seeds -> ``report.md`` with metrics, loss curve, a per-episode plot and rollout videos.

The default task is PickPlace: put the named cube on the named pad, the goal (which cube, which pad, and where they
are) given to a flow-matching policy in its state. ``--task=PushT`` runs the earlier PushT demo (a diffusion policy)
with its own tuned defaults. Each task's defaults are a preset (:data:`PRESETS`); ``--collect.*``, ``--train.*``,
``--eval.*`` and ``--baseline_episodes`` override fields of the chosen task's preset, in any order on the command line.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.collect import CollectConfig, collect
from ember.config import save_config
from ember.errors import ConfigError
from ember.eval import EvalConfig, write_eval_outputs
from ember.report import write_demo_report
from ember.runs import default_out, prepare_run_folder
from ember.train import TrainConfig, train

DEFAULT_TASK = "PickPlace"
STAGES = ("collect", "train", "eval", "baseline_episodes")


def _pusht_train_config() -> TrainConfig:
    """Tuned for a few CPU minutes. Success at PushT's 0.95-coverage bar is mostly a matter of gradient steps, so
    the step budget is what fits the demo's time. Predicting the clean action chunk ('sample') learns faster than
    predicting the noise at this budget. Executing 4 actions of each 16-step chunk before re-planning (instead of
    8) suits PushT, which rewards reacting to the block often. The sweep behind each choice is in docs/demo.md
    ("How the PushT defaults were chosen")."""
    cfg = TrainConfig()
    cfg.steps = 6000
    cfg.batch_size = 64
    cfg.policy.prediction_type = "sample"
    cfg.policy.n_action_steps = 4
    return cfg


def _pickplace_train_config() -> TrainConfig:
    """Flow matching with the goal in the state (the goal cube's and pad's one-hots and positions), as
    bench/learn/RESULTS.md found it learns PickPlace fastest; the step budget and sizes are docs/demo.md's sweep."""
    from ember.policies import make_policy_config

    cfg = TrainConfig()
    cfg.policy = make_policy_config("flow")
    cfg.steps = 5000
    cfg.batch_size = 64
    cfg.obs_keys = ("observation.state", "observation.environment_state")
    return cfg


def _preset(task: str) -> dict[str, Any]:
    """The stage configs ``ember demo --task=<task>`` starts from."""
    if task == "PushT":
        return {
            "collect": CollectConfig(task="PushT", num_episodes=100),
            "train": _pusht_train_config(),
            "eval": EvalConfig(task="PushT", num_episodes=40, num_videos=3, max_episode_steps=300),
            "baseline_episodes": 20,
        }
    if task == "PickPlace":
        return {
            "collect": CollectConfig(task="PickPlace", num_episodes=200),
            "train": _pickplace_train_config(),
            "eval": EvalConfig(task="PickPlace", num_episodes=50, batch_size=25, num_videos=3),
            "baseline_episodes": 20,
        }
    raise ConfigError(f"--task={task!r}: the demo has presets for {sorted(PRESETS)}")


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {
    "PickPlace": lambda: _preset("PickPlace"),
    "PushT": lambda: _preset("PushT"),
}


def _carry(old: Any, current: Any, new: Any) -> Any:
    """``new`` with every field where ``current`` differs from ``old`` (what was overridden) set as in ``current``;
    a sub-config whose type was changed is taken whole."""
    if not dataclasses.is_dataclass(current) or type(current) is not type(old) or type(new) is not type(old):
        return current if current != old else new
    for f in dataclasses.fields(current):
        a, b = getattr(old, f.name), getattr(current, f.name)
        if a != b:
            setattr(new, f.name, _carry(a, b, getattr(new, f.name)))
    return new


@dataclass
class DemoConfig:
    """The demo's three stages; each stage's fields are reachable as --collect.*, --train.*, --eval.*."""

    out: str = ""
    """Demo folder; empty = outputs/demo/<date>_<time>."""
    seed: int = 0
    task: str = DEFAULT_TASK
    """``PickPlace`` (goal-conditioned flow-matching policy) or ``PushT`` (diffusion policy): picks the stages'
    defaults; overrides of their fields apply on top."""
    collect: CollectConfig = field(default_factory=lambda: _preset(DEFAULT_TASK)["collect"])
    train: TrainConfig = field(default_factory=lambda: _preset(DEFAULT_TASK)["train"])
    eval: EvalConfig = field(default_factory=lambda: _preset(DEFAULT_TASK)["eval"])
    """PickPlace: 50 episodes of the task's 120 steps, 25 envs a batch; PushT: 40 of 300 (the expert needs ~80)."""
    baseline_episodes: int = 20
    """Episodes for the untrained baseline (the first of the same seeds); it never comes close to success."""
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.task != DEFAULT_TASK:
            self._switch(DEFAULT_TASK, self.task)

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get("task")
        super().__setattr__(name, value)
        if name == "task" and old is not None and value != old and all(s in self.__dict__ for s in STAGES):
            self._switch(old, value)

    def _switch(self, old_task: str, new_task: str) -> None:
        """Stages of ``new_task``'s preset, keeping what was already overridden on ``old_task``'s."""
        if new_task not in PRESETS:
            raise ConfigError(f"--task={new_task!r}: the demo has presets for {sorted(PRESETS)}")
        old, new = PRESETS[old_task](), PRESETS[new_task]()
        for stage in STAGES:
            self.__dict__[stage] = _carry(old[stage], getattr(self, stage), new[stage])


def policy_label(policy_config: Any) -> str:
    return {"flow": "flow-matching", "diffusion": "diffusion"}.get(policy_config.type, policy_config.type)


def _captioned(frame: Any, caption: str) -> Any:
    """The instruction written on a video frame, as the conditioned policies' videos show it."""
    import numpy as np
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.asarray(frame, np.uint8)[..., :3])
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, image.width, 13), fill=(0, 0, 0))
    draw.text((4, 1), caption[:80], fill=(255, 255, 255))
    return np.ascontiguousarray(np.asarray(image))


def evaluate_demo(
    policy: Any,
    cfg: EvalConfig,
    out: Path,
    *,
    caption: bool,
    desc: str,
    quiet: bool,
) -> tuple[Any, list[float]]:
    """``ember.eval.evaluate`` with the episode's instruction drawn into its video (``caption``: the goal the
    policy was given, as its state's goal columns) and each episode's highest task progress (``info['progress']``,
    0-1; PickPlace: approach, grasp, lift, carry, lower, release)."""
    from ember.eval.metrics import summarize
    from ember.eval.parallel import rollout_parallel
    from ember.eval.report import write_videos
    from ember.eval.rollout import rollout

    def on_batch(batch: list) -> None:
        if caption:
            for trajectory in batch:
                if trajectory.frames and trajectory.instruction:
                    trajectory.frames = [_captioned(f, trajectory.instruction) for f in trajectory.frames]
        write_videos(batch, out)

    t0 = time.perf_counter()
    run = rollout if cfg.executor == "serial" else rollout_parallel
    trajectories = run(
        policy,
        cfg,
        keep_observations=False,
        keep_images=False,
        num_videos=cfg.num_videos,
        on_batch=on_batch,
        desc=desc,
        quiet=quiet,
    )
    progress = [max([0.0, *(float(i.get("progress", 0.0)) for i in t.infos)]) for t in trajectories]
    return summarize(trajectories, time.perf_counter() - t0, cfg.split), progress


def plot_episodes(progress: list[float], successes: list[bool], path: Path, title: str) -> Path:
    """Each episode's highest task progress as a bar, green for successes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
    ax.bar(range(len(progress)), progress, color=["tab:green" if s else "tab:red" for s in successes])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("evaluation episode")
    ax.set_ylabel("max task progress")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_demo(cfg: DemoConfig, *, quiet: bool = False) -> dict[str, Any]:
    from ember.policies import make_policy

    t0 = time.perf_counter()
    if cfg.collect.task != cfg.task:
        raise ConfigError(
            f"--collect.task={cfg.collect.task}: the demo's task is set with --task "
            f"(one of {sorted(PRESETS)}), which picks every stage's defaults"
        )
    if not cfg.out:
        cfg.out = default_out("demo")
    out = prepare_run_folder(cfg.out, overwrite=cfg.overwrite)
    cfg.collect.out = str(out / "dataset")
    cfg.collect.seed = cfg.seed
    cfg.train.out = str(out / "train")
    cfg.train.dataset = cfg.collect.out
    cfg.train.seed = cfg.seed
    cfg.eval.task = cfg.collect.task
    cfg.eval.backend = cfg.collect.backend
    cfg.eval.seed = 100_000 + cfg.seed
    save_config(cfg, out)
    pusht = cfg.task == "PushT"

    t = time.perf_counter()
    collected = collect(cfg.collect, quiet=quiet)
    collect_seconds = time.perf_counter() - t
    trained_run = train(cfg.train, quiet=quiet)

    from ember.policies import load_policy

    policy = load_policy(trained_run.checkpoint)
    label = policy_label(policy.config)
    t = time.perf_counter()
    eval_dir = prepare_run_folder(out / "eval")
    trained, progress = evaluate_demo(
        policy, cfg.eval, eval_dir, caption=not pusht, desc="eval trained", quiet=quiet
    )
    write_eval_outputs(
        trained, eval_dir, {"checkpoint": str(trained_run.checkpoint), "max_progress": progress}
    )
    successes = [e.success for e in trained.episodes]
    if pusht:
        from ember.plots import plot_coverage

        plot = plot_coverage(
            [e.coverage_trace for e in trained.episodes],
            eval_dir / "coverage.png",
            successes,
            title=f"trained {label} policy",
        )
    else:
        plot = plot_episodes(
            progress,
            successes,
            eval_dir / "episodes.png",
            f"trained {label} policy: highest task progress per episode",
        )
    eval_seconds = time.perf_counter() - t

    from ember.data import EmberDataset

    t = time.perf_counter()
    baseline_policy = make_policy(policy.config, dataset_stats=EmberDataset(cfg.collect.out).meta.stats)
    base_dir = prepare_run_folder(out / "eval_untrained")
    baseline_cfg = dataclasses.replace(
        cfg.eval, num_episodes=min(cfg.baseline_episodes, cfg.eval.num_episodes)
    )
    untrained, base_progress = evaluate_demo(
        baseline_policy, baseline_cfg, base_dir, caption=not pusht, desc="eval untrained", quiet=quiet
    )
    write_eval_outputs(untrained, base_dir, {"max_progress": base_progress})
    baseline_seconds = time.perf_counter() - t

    summary = {
        "task": cfg.task,
        "policy": label,
        "dataset": str(collected.root),
        "episodes": collected.episodes,
        "frames": collected.frames,
        "expert_success_rate": collected.expert_success_rate,
        "collect_seconds": collect_seconds,
        "checkpoint": str(trained_run.checkpoint),
        "train_steps": trained_run.steps,
        "train_seconds": trained_run.seconds,
        "first_loss": trained_run.first_loss,
        "final_loss": trained_run.final_loss,
        "success_rate": trained.success_rate,
        "success_ci95": list(trained.success_ci95),
        "mean_max_coverage": trained.mean_max_coverage,
        "mean_final_coverage": trained.mean_final_coverage,
        "mean_max_progress": sum(progress) / max(1, len(progress)),
        "untrained_success_rate": untrained.success_rate,
        "untrained_mean_max_coverage": untrained.mean_max_coverage,
        "untrained_mean_max_progress": sum(base_progress) / max(1, len(base_progress)),
        "eval_episodes": trained.num_episodes,
        "eval_seconds": eval_seconds,
        "baseline_episodes": untrained.num_episodes,
        "baseline_seconds": baseline_seconds,
        "plot": str(plot.relative_to(out)),
        "total_seconds": time.perf_counter() - t0,
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["report"] = str(write_demo_report(Path(out), summary, trained, untrained))
    return summary
