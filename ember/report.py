"""Markdown reports that link a run's metrics, plots and videos (readable on GitHub or locally)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _fmt_rate(result: Any) -> str:
    lo, hi = result.success_ci95
    return f"{100 * result.success_rate:.0f}% (95% CI {100 * lo:.0f}-{100 * hi:.0f}%)"


def _video_lines(result: Any, prefix: str = "") -> list[str]:
    lines = []
    for ep in result.episodes:
        if ep.video:
            status = "success" if ep.success else "failure"
            lines.append(
                f"- [episode seed {ep.seed}: {status}, max coverage {ep.max_coverage:.2f}]({prefix}{ep.video})"
            )
    return lines


def _files_and_plots(files: list[str], plots: list[tuple[str, str]]) -> list[str]:
    """Links to the run's files, then its plots (alt text, path), each followed by a blank line."""
    lines = ["Files: " + ", ".join(f"[{name}]({name})" for name in files), ""]
    for alt, path in plots:
        lines += [f"![{alt}]({path})", ""]
    return lines


def _write(out: Path, lines: list[str]) -> Path:
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_eval_report(out: Path, cfg: Any, result: Any, checkpoint: Path) -> Path:
    lines = [
        f"# Evaluation: {cfg.task} ({cfg.backend}, split `{cfg.split}`)",
        "",
        f"- checkpoint: `{checkpoint}`",
        f"- episodes: {result.num_episodes} (seeds {cfg.seed}..{cfg.seed + result.num_episodes - 1})",
        f"- success rate: **{_fmt_rate(result)}**",
        f"- mean max coverage: {result.mean_max_coverage:.3f}; mean final coverage: {result.mean_final_coverage:.3f}",
        f"- wall time: {result.seconds:.1f} s",
        "",
        *_files_and_plots(["metrics.json", "config.json"], [("coverage per episode", "coverage.png")]),
        "## Rollout videos",
        *_video_lines(result),
        "",
    ]
    return _write(out, lines)


def write_demo_report(out: Path, summary: dict[str, Any], trained: Any, untrained: Any) -> Path:
    task, label = summary.get("task", "PushT"), summary.get("policy", "diffusion")
    pusht = task == "PushT"
    if pusht:
        title = f"# ember demo: {label} policy on 3-D PushT (MuJoCo, Franka Panda)"
        what = "a diffusion policy trained on them on the CPU"
        header = "| policy | success rate | mean max coverage | mean final coverage |"
        rows = [
            f"| trained {label} | {_fmt_rate(trained)} | {trained.mean_max_coverage:.3f} | "
            f"{trained.mean_final_coverage:.3f} |",
            f"| untrained (baseline) | {_fmt_rate(untrained)} | {untrained.mean_max_coverage:.3f} | "
            f"{untrained.mean_final_coverage:.3f} |",
        ]
        plot = ("coverage per episode (trained)", summary.get("plot", "eval/coverage.png"))
        videos = _video_lines
    else:
        title = f"# ember demo: goal-conditioned {label} policy on {task} (MuJoCo, Franka Panda)"
        what = (
            f"a {label} policy trained on them on the CPU, the instruction's goal (which cube, which pad, and "
            "where they are) given in its state"
        )
        header = "| policy | episodes | success rate | mean max task progress |"
        rows = [
            f"| trained {label} | {trained.num_episodes} | {_fmt_rate(trained)} | "
            f"{summary['mean_max_progress']:.2f} |",
            f"| untrained (baseline) | {untrained.num_episodes} | {_fmt_rate(untrained)} | "
            f"{summary['untrained_mean_max_progress']:.2f} |",
        ]
        plot = ("highest task progress per episode (trained)", summary.get("plot", "eval/episodes.png"))
        videos = _instruction_video_lines
    lines = [
        title,
        "",
        f"A scripted expert recorded demonstrations into a LeRobot v3 dataset, {what}, and both the trained policy "
        "and an untrained one (same architecture and normalization) were rolled out on the same seeded episodes "
        "(seeds never used for collection).",
        "",
        header,
        "|---|---|---|---|",
        *rows,
        "",
        f"- dataset: `{summary['dataset']}` ({summary['episodes']} episodes, {summary['frames']} frames; "
        f"expert success {100 * summary['expert_success_rate']:.0f}%)",
        f"- training: {summary['train_steps']} steps in {summary['train_seconds']:.0f} s, "
        f"loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f}",
        f"- checkpoint: `{summary['checkpoint']}`",
        f"- total wall time: {summary['total_seconds']:.0f} s",
        "",
        *_files_and_plots(
            ["metrics.json", "config.json", "train/metrics.json", "eval/metrics.json"],
            [("training loss", "train/loss.png"), plot],
        ),
        "## Rollout videos (trained policy)" + ("" if pusht else ", the instruction written in"),
        *videos(trained, "eval/"),
        "",
        "## Rollout videos (untrained baseline)",
        *videos(untrained, "eval_untrained/"),
        "",
    ]
    return _write(out, lines)


def _instruction_video_lines(result: Any, prefix: str = "") -> list[str]:
    return [
        f"- [episode seed {ep.seed}: {'success' if ep.success else 'failure'}]({prefix}{ep.video})"
        for ep in result.episodes
        if ep.video
    ]
