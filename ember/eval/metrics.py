"""Success metrics as functions of trajectories: per-episode results, a success rate with a Wilson 95% interval.

An episode succeeds if the env reported ``is_success`` at any step; its coverage trace is the env's ``coverage``
per step where the task reports one (PushT), else 1.0 on success steps and 0.0 otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ember.eval.rollout import Trajectory


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    max_coverage: float
    final_coverage: float
    length: int
    total_reward: float
    video: str | None = None
    coverage_trace: list[float] = field(default_factory=list)
    split: str = "train"
    expert_success: bool | None = None
    """With expert conditioning: whether the expert itself solved the seed the conditioning came from."""


@dataclass
class EvalResult:
    success_rate: float
    success_ci95: tuple[float, float]
    mean_max_coverage: float
    mean_final_coverage: float
    num_episodes: int
    seconds: float
    episodes: list[EpisodeResult] = field(default_factory=list)
    split: str = "train"
    per_split: dict[str, EvalResult] = field(default_factory=dict)
    """Filled on the result ``run_eval`` returns when several splits ran (it is then the first split's)."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "split": self.split,
            "success_rate": self.success_rate,
            "success_ci95": list(self.success_ci95),
            "mean_max_coverage": self.mean_max_coverage,
            "mean_final_coverage": self.mean_final_coverage,
            "num_episodes": self.num_episodes,
            "eval_seconds": self.seconds,
            "episodes": [vars(e) for e in self.episodes],
        }
        if self.per_split:
            out["per_split"] = {name: r.to_dict() for name, r in self.per_split.items()}
        return out


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval: honest for small n and rates near 0 or 1."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def step_success(info: dict[str, Any]) -> bool:
    return bool(info.get("is_success", 0.0))


def coverage_trace(trajectory: Trajectory) -> list[float]:
    """Task progress per step: the env's ``coverage``, or 1.0 / 0.0 by ``is_success`` for tasks without one."""
    return [float(info.get("coverage", float(step_success(info)))) for info in trajectory.infos]


def is_success(trajectory: Trajectory) -> bool:
    return any(step_success(info) for info in trajectory.infos)


def episode_result(trajectory: Trajectory) -> EpisodeResult:
    trace = coverage_trace(trajectory)
    total_reward = 0.0
    for reward in trajectory.rewards:  # in step order, as a running sum
        total_reward += float(reward)
    return EpisodeResult(
        seed=trajectory.seed,
        success=is_success(trajectory),
        max_coverage=max([0.0, *trace]),
        final_coverage=trace[-1] if trace else 0.0,
        length=trajectory.length,
        total_reward=total_reward,
        video=trajectory.video,
        coverage_trace=trace,
        split=trajectory.split,
        expert_success=trajectory.conditioning.expert_success,
    )


def summarize(
    episodes: Sequence[Trajectory | EpisodeResult],
    seconds: float = 0.0,
    split: str | None = None,
) -> EvalResult:
    """Success rate (Wilson 95% CI) and mean coverages of ``episodes`` (trajectories, or results made from them);
    ``split`` defaults to the episodes' own."""
    results = [e if isinstance(e, EpisodeResult) else episode_result(e) for e in episodes]
    n_success = sum(r.success for r in results)
    return EvalResult(
        success_rate=n_success / max(1, len(results)),
        success_ci95=wilson_interval(n_success, len(results)),
        mean_max_coverage=float(np.mean([r.max_coverage for r in results])) if results else 0.0,
        mean_final_coverage=float(np.mean([r.final_coverage for r in results])) if results else 0.0,
        num_episodes=len(results),
        seconds=seconds,
        episodes=results,
        split=split if split is not None else (results[0].split if results else "train"),
    )
