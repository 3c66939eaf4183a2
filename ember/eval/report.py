"""What an evaluation run writes: rollout videos, ``metrics.json``, coverage plots and a multi-split ``report.md``
(the single-split report is ``ember.report.write_eval_report``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.eval.metrics import EvalResult, is_success
from ember.eval.rollout import Trajectory
from ember.plots import plot_coverage
from ember.video import write_mp4

if TYPE_CHECKING:
    from ember.eval.config import EvalConfig


def video_name(trajectory: Trajectory) -> str:
    return f"videos/episode_{trajectory.index:03d}_{'success' if is_success(trajectory) else 'failure'}.mp4"


def write_videos(trajectories: Sequence[Trajectory], out: Path) -> None:
    """Write each recorded trajectory's frames to ``out/videos/`` as MP4, set its ``video`` and drop the frames."""
    for trajectory in trajectories:
        if not trajectory.frames:
            continue
        trajectory.video = video_name(trajectory)
        write_mp4(trajectory.frames, out / trajectory.video, fps=trajectory.fps)
        trajectory.frames = []


def write_eval_outputs(result: EvalResult, out: Path, extra: dict[str, Any] | None = None) -> Path:
    """``metrics.json``: the aggregate, per-split and per-episode results, plus ``extra`` fields."""
    payload = result.to_dict() | (extra or {})
    path = out / "metrics.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def plot_result_coverage(result: EvalResult, path: Path, title: str | None = None) -> Path:
    """Coverage per step of every episode of ``result``, green for successes."""
    traces = [e.coverage_trace for e in result.episodes]
    successes = [e.success for e in result.episodes]
    if title is None:
        return plot_coverage(traces, path, successes)
    return plot_coverage(traces, path, successes, title=title)


def format_rate(r: EvalResult) -> str:
    lo, hi = r.success_ci95
    return f"{100 * r.success_rate:.0f}% ({100 * lo:.0f}-{100 * hi:.0f}%)"


def write_splits_report(out: Path, cfg: EvalConfig, results: dict[str, EvalResult], checkpoint: Path) -> Path:
    """``report.md`` of a multi-split run: one table row per split, then each split's videos."""
    lines = [
        f"# Evaluation: {cfg.task} ({cfg.backend}), {len(results)} splits",
        "",
        f"- checkpoint: `{checkpoint}`",
        f"- {cfg.num_episodes} episodes per split, seeds {cfg.seed}.."
        f"{cfg.seed + (cfg.num_episodes - 1) // max(1, cfg.rollouts_per_seed)}"
        + (f" ({cfg.rollouts_per_seed} rollouts each)" if cfg.rollouts_per_seed > 1 else "")
        + " (salted per split by the environment)",
        f"- conditioning: {cfg.conditioning_source}",
        *([f"- env options: `{json.dumps(cfg.env_kwargs)}`"] if cfg.env_kwargs else []),
        "",
        "| split | success (95% CI) | mean max coverage | episodes | wall time |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {format_rate(r)} | {r.mean_max_coverage:.3f} | {r.num_episodes} | {r.seconds:.0f} s |"
        )
    lines += ["", "Files: [metrics.json](metrics.json), [config.json](config.json)", ""]
    for name, r in results.items():
        lines += [f"## {name}", "", f"![coverage]({name}/coverage.png)", ""]
        for ep in r.episodes:
            if ep.video:
                status = "success" if ep.success else "failure"
                lines.append(f"- [seed {ep.seed}: {status}]({name}/{ep.video})")
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
