"""Scripted-expert success over seeded episodes, per task, backend, robot and split.

``python -m bench.experts`` runs every (task, backend) the registry offers on MuJoCo and PyBullet, for the four
splits, 100 episodes each (seeds 0..99; a split salts them, so splits never share an initial state), plus the UR5e
on the MuJoCo tabletop tasks. It prints a table, writes the full numbers to ``bench/results/experts.json`` and the
summary to ``bench/experts/RESULTS.md``. Jobs run in ``--workers`` processes (one env each).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

ROOT = Path(__file__).resolve().parents[2]
TARGET = 0.95
"""Required expert success in ``train`` (the issue's bar for demonstrations)."""


@dataclass(frozen=True)
class Job:
    task: str
    backend: str
    robot: str
    split: str
    episodes: int
    seed: int = 0


@dataclass
class JobResult:
    job: Job
    result: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def jobs(
    tasks: list[str], backends: list[str], robots: list[str], splits: list[str], episodes: int
) -> list[Job]:
    from ember.sims import TASKS

    out = []
    for task in tasks:
        for backend in backends:
            if backend not in TASKS[task]:
                continue
            for robot in robots:
                if robot != "panda" and (task == "PushT" or backend != "mujoco"):
                    continue  # PushT is a Panda task; the UR5e is MuJoCo-only
                out.extend(Job(task, backend, robot, split, episodes) for split in splits)
    return out


def run_job(job: Job) -> JobResult:
    from ember.sims.experts.__main__ import evaluate_expert

    kwargs: dict[str, Any] = {"backend": job.backend, "split": job.split}
    if job.robot != "panda":
        kwargs["robot"] = job.robot
    t0 = time.perf_counter()
    result = evaluate_expert(job.task, range(job.seed, job.seed + job.episodes), **kwargs)
    return JobResult(job, result, time.perf_counter() - t0)


def table(results: list[JobResult], splits: list[str]) -> str:
    """Markdown table: one row per (task, backend, robot), success per split, mean episode length in train."""
    rows: dict[tuple[str, str, str], dict[str, JobResult]] = {}
    for r in results:
        rows.setdefault((r.job.task, r.job.backend, r.job.robot), {})[r.job.split] = r
    head = "| task | backend | robot | " + " | ".join(splits) + " | steps/episode (train) |"
    lines = [head, "|" + "---|" * (4 + len(splits))]
    for (task, backend, robot), by_split in rows.items():
        cells = []
        for split in splits:
            r = by_split.get(split)
            if r is None:
                cells.append("-")
                continue
            rate = r.result["success_rate"]
            flag = "" if split != "train" or rate >= TARGET else " **(below 95%)**"
            cells.append(f"{rate:.0%} ({round(rate * r.result['episodes'])}/{r.result['episodes']}){flag}")
        train = by_split.get("train")
        length = f"{train.result['mean_length']:.0f}" if train else "-"
        lines.append(f"| {task} | {backend} | {robot} | " + " | ".join(cells) + f" | {length} |")
    return "\n".join(lines)


def write_markdown(
    path: Path, results: list[JobResult], splits: list[str], episodes: int, seconds: float
) -> None:
    failed = {
        f"{r.job.task}/{r.job.backend}/{r.job.robot}/{r.job.split}": r.result.get("failed_seeds")
        for r in results
        if r.result.get("failed_seeds")
    }
    text = [
        "# Scripted expert success",
        "",
        f"Measured with `python -m bench.experts` ({episodes} seeded episodes per cell, seeds 0..{episodes - 1}; each "
        "split salts the seeds). An episode succeeds when the env reports `is_success` before it is truncated. "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}; wall time "
        f"{seconds / 60:.1f} min. Full numbers: `bench/results/experts.json` (not committed).",
        "",
        table(results, splits),
        "",
        "Splits: `train` (demonstrations are collected here), `heldout_goal` (goal values/locations/pairs never drawn "
        "in train), `heldout_object` (unseen colours, cylinders), `heldout_scene` (checker table, dim side light, "
        "3 distractors). See docs/sims.md.",
        "",
    ]
    if failed:
        text += ["Failed seeds (for debugging the experts):", ""]
        text += [f"- {key}: {seeds}" for key, seeds in failed.items()]
        text.append("")
    path.write_text("\n".join(text))


def main(argv: list[str] | None = None) -> int:
    from ember.sims import TASKS
    from ember.sims.splits import SPLITS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--backends", default="mujoco,pybullet")
    parser.add_argument("--robots", default="panda,ur5e")
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "experts.json"))
    parser.add_argument(
        "--markdown", default=str(Path(__file__).with_name("RESULTS.md")), help="summary to write ('' = none)"
    )
    args = parser.parse_args(argv)
    splits = args.splits.split(",")
    todo = jobs(
        args.tasks.split(","), args.backends.split(","), args.robots.split(","), splits, args.episodes
    )
    print(f"{len(todo)} jobs x {args.episodes} episodes on {args.workers} workers")
    t0 = time.perf_counter()
    results: list[JobResult] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for r in pool.map(run_job, todo):
            results.append(r)
            j = r.job
            print(
                f"  {j.task:9s} {j.backend:8s} {j.robot:5s} {j.split:14s} success {r.result['success_rate']:6.1%}"
                f"  ({r.seconds:5.0f} s)",
                flush=True,
            )
    seconds = time.perf_counter() - t0
    print()
    print(table(results, splits))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"episodes": args.episodes, "seconds": seconds, "results": [asdict(r) for r in results]}, indent=2
        )
        + "\n"
    )
    print(f"\nwrote {out}")
    if args.markdown:
        write_markdown(Path(args.markdown), results, splits, args.episodes, seconds)
        print(f"wrote {args.markdown}")
    below = [r for r in results if r.job.split == "train" and r.result["success_rate"] < TARGET]
    return 1 if below else 0
