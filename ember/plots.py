"""Plots written into run folders (PNG, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_loss_curve(
    steps: Sequence[int], losses: Sequence[float], path: str | Path, title: str = "training loss"
) -> Path:
    """Raw per-step loss (faint) and a moving average, log scale: what a user checks first."""
    steps_arr = np.asarray(steps, dtype=float)
    loss_arr = np.asarray(losses, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps_arr, loss_arr, alpha=0.3, lw=0.8, label="loss")
    if len(loss_arr) >= 10:
        k = max(5, len(loss_arr) // 50)
        smooth = np.convolve(loss_arr, np.ones(k) / k, mode="valid")
        ax.plot(steps_arr[k - 1 :], smooth, lw=1.8, label=f"moving average ({k})")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_coverage(
    traces: Sequence[Sequence[float]],
    path: str | Path,
    successes: Sequence[bool] | None = None,
    threshold: float | None = None,
    title: str = "task progress per episode",
) -> Path:
    """Coverage (or success) over control steps, one line per episode, green for successes."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for i, trace in enumerate(traces):
        ok = successes[i] if successes is not None else False
        ax.plot(np.arange(1, len(trace) + 1), trace, color="tab:green" if ok else "tab:red", alpha=0.5, lw=1)
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=1, label=f"success threshold {threshold:g}")
        ax.legend()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("control step")
    ax.set_ylabel("coverage")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
