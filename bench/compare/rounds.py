"""What every ember-vs-LeRobot comparison here shares: run each side in its own venv, alternating for a number of
rounds, then medians, ratios and the JSON. Standard library only: LeRobot's venv imports this too."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

SIDES = ("ember", "lerobot")


def torch_adam(torch, params):
    """LeRobot 0.4.4's diffusion preset: ``AdamConfig(lr, betas, eps=1e-8, weight_decay=1e-6).build`` is this."""
    return torch.optim.Adam(params, lr=1e-4, betas=(0.95, 0.999), eps=1e-8, weight_decay=1e-6)


def train_step(torch, model, loss, optimizer) -> None:
    """What both trainers do with a loss: backward, ``clip_grad_norm_(10)``, the optimizer's step, zero grads.
    (``torch`` is passed in: this module stays importable without it.)"""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def check_peer(peer_python: str) -> None:
    if not Path(peer_python).exists():
        sys.exit(
            f"no LeRobot venv at {peer_python}: build it with ../shared/tools/peer-lerobot.sh DIR and pass "
            "--peer-python DIR/bin/python"
        )


def run_rounds(
    script: str,
    peer_python: str,
    side_args: Sequence[str],
    rounds: int,
    shown: Callable[[str], bool] = lambda key: True,
) -> dict[str, list[dict]]:
    """``script --side S *side_args`` for both sides, ember first in even rounds and LeRobot first in odd ones, one
    torch thread, hub offline; each run prints its measurements as JSON on its last line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for r in range(rounds):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            python = sys.executable if side == "ember" else peer_python
            proc = subprocess.run(
                [python, script, "--side", side, *side_args], capture_output=True, text=True, env=env
            )
            if proc.returncode:
                sys.exit(f"{side} side failed:\n{proc.stderr[-3000:]}")
            runs[side].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(
                f"round {r} {side}: "
                + ", ".join(f"{k} {v:.1f}" for k, v in runs[side][-1].items() if shown(k)),
                flush=True,
            )
    return runs


def summarize(
    runs: dict[str, list[dict]], metrics: Sequence[str], peer_key: Callable[[str], str], header: str
) -> list[dict]:
    """Medians over rounds per metric, LeRobot's (under ``peer_key(metric)``) beside it where it measured one, and
    the ratio; prints the table."""
    rows = []
    for metric in metrics:
        row = {
            "metric": metric,
            "ember": statistics.median(x[metric] for x in runs["ember"]),
            "ember_rounds": [x[metric] for x in runs["ember"]],
        }
        peer = peer_key(metric)
        if peer in runs["lerobot"][0]:
            lr = statistics.median(x[peer] for x in runs["lerobot"])
            row |= {
                "lerobot": lr,
                "ember_over_lerobot": row["ember"] / lr,
                "lerobot_rounds": [x[peer] for x in runs["lerobot"]],
            }
        rows.append(row)
    width = max(len(header), *(len(r["metric"]) for r in rows)) + 2
    print(f"\n{header:{width}s} {'ember':>9s} {'LeRobot':>9s} {'ember/LeRobot':>14s}")
    for row in rows:
        peer = f" {row['lerobot']:9.1f} {row['ember_over_lerobot']:14.2f}" if "lerobot" in row else ""
        print(f"{row['metric']:{width}s} {row['ember']:9.1f}{peer}")
    return rows


def write_json(out: str, rounds: int, rows: list[dict], runs: dict[str, list[dict]]) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(
        json.dumps(
            {"rounds": rounds, "threads": 1, "load_avg": os.getloadavg(), "rows": rows, "runs": runs},
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out}")
