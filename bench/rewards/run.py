"""Learned reward models against the simulator's ground truth on held-out PickPlace and Lift rollouts.

    .venv/bin/python bench/rewards/run.py --work=/tmp/rewards_bench [--success_steps=...] [--bt_steps=...]

1. Data: per task a training and a held-out dataset of expert, noisy and failing rollouts (a third each) with the
   front and wrist cameras at 64x64, from ``ember collect --behavior=mixed --obs_mode=pixels --observations=robot``;
   different seeds, so held-out episodes are new scenes, colours and instructions. Further training datasets
   ``<work>/data/<task>-train*`` (e.g. more ``ember collect`` runs) are used too.
2. ``ember train-reward --kind=success`` on both tasks' training sets (frames + instruction only).
3. ``ember train-reward --kind=bradley_terry`` on 2,000 preferences from ``sim.progress`` with 20% flipped.
4. On the held-out sets, through the labelers ``ember label`` uses (``success_model``, ``bradley_terry``): success
   AUROC (per frame, vs ``sim.success``), progress Spearman (per frame, vs ``sim.progress``), BT preference accuracy
   on held-out segment pairs vs the un-flipped ground truth, and labeling frames/s on the CPU.

Prints a table and writes ``<work>/results.json`` (and ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TASKS = ("PickPlace", "Lift")
MAX_STEPS = {"PickPlace": 60, "Lift": 50}
"""Episode caps for the collected rollouts (the experts need ~30 and ~20 steps; failing ones run to the cap)."""


def make_data(
    work: Path, train_eps: int, test_eps: int, extra_eps: int, image_size: int
) -> dict[str, dict[str, Any]]:
    """Per task the held-out dataset and the training datasets (``<task>-train*``: more can be added by hand)."""
    paths: dict[str, dict[str, Any]] = {}
    for task in TASKS:
        paths[task] = {}
        for split, n, seed in (("train", train_eps, 1), ("test", test_eps, 2), ("train2", extra_eps, 3)):
            if n <= 0:
                continue
            root = work / "data" / f"{task}-{split}"
            paths[task][split] = str(root)
            if (root / "meta" / "info.json").is_file():
                continue
            cmd = [
                str(ROOT / ".venv/bin/ember"),
                "collect",
                f"--task={task}",
                "--behavior=mixed",
                "--mix=expert:0.34,noisy:0.33,failing:0.33",
                "--obs_mode=pixels",
                "--cameras=front,wrist",
                f"--image_size={image_size}",
                f"--num_episodes={n}",
                f"--seed={seed * 100_000}",
                "--observations=robot",
                f"--max_episode_steps={MAX_STEPS[task]}",
                f"--out={root}",
            ]
            subprocess.run(cmd, check=True)
        paths[task]["train"] = sorted(
            str(p) for p in (work / "data").glob(f"{task}-train*") if (p / "meta" / "info.json").is_file()
        )
    return paths


def train(
    kind: str, datasets: list[str], out: Path, steps: int, seed: int, extra: dict[str, Any]
) -> dict[str, Any]:
    from ember.config import apply_overrides
    from ember.rewards.models.train import TrainRewardConfig, train_reward

    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    cfg = TrainRewardConfig(
        kind=kind,
        dataset=tuple(datasets),
        out=str(out),
        steps=steps,
        seed=seed,
        eval_fraction=0.0,
        overwrite=True,
    )
    cfg = apply_overrides(cfg, [f"--{k}={v}" for k, v in extra.items()])
    return train_reward(cfg)


def pair_accuracy(pairs: list, reward: np.ndarray, progress: np.ndarray, margin: float) -> tuple[float, int]:
    """Fraction of ``pairs`` whose ground-truth answer (more mean progress) the mean learned reward agrees with,
    over the pairs whose mean progress differs by more than ``margin``; and how many those are."""
    from ember.rewards.base import Preference

    keep = [
        p for p in pairs if abs(progress[p.a[0] : p.a[1]].mean() - progress[p.b[0] : p.b[1]].mean()) > margin
    ]
    ok = [
        (reward[p.a[0] : p.a[1]].mean() > reward[p.b[0] : p.b[1]].mean()) == (p.preference is Preference.A)
        for p in keep
    ]
    return (float(np.mean(ok)) if ok else float("nan")), len(keep)


def evaluate(
    paths: dict[str, dict[str, Any]],
    success_dir: Path,
    bt_dir: Path,
    seed: int,
    eval_pairs: int,
    segment_length: int,
) -> dict[str, Any]:
    from ember.rewards.base import EpisodeView, Preference
    from ember.rewards.models.bradley_terry import (
        BradleyTerryLabeler,
        BradleyTerryLabelerConfig,
        progress_preferences,
        sample_segments,
    )
    from ember.rewards.models.data import load_frames
    from ember.rewards.models.metrics import auroc, spearman
    from ember.rewards.models.success import SuccessModelLabeler, SuccessModelLabelerConfig

    sm = SuccessModelLabeler(SuccessModelLabelerConfig(path=str(success_dir)))
    bt = BradleyTerryLabeler(BradleyTerryLabelerConfig(path=str(bt_dir)))
    cams = list(sm.model.config.cameras)
    rows: dict[str, Any] = {}
    pooled: dict[str, list[np.ndarray]] = {"s": [], "p": [], "gs": [], "gp": [], "r": []}
    timing = {"success_model": [0.0, 0], "bradley_terry": [0.0, 0]}
    for task in TASKS:
        store = load_frames([paths[task]["test"]], cams, ["sim.success", "sim.progress"])
        succ, prog, rew = (np.zeros(store.num_frames, np.float32) for _ in range(3))
        for sl in store.episode_slices():
            view = EpisodeView(
                int(store.episode[sl.start]),
                store.instructions[sl.start],
                {c: store.images[c][sl] for c in cams},
            )
            t0 = time.perf_counter()
            labels = sm.label(view)
            timing["success_model"][0] += time.perf_counter() - t0
            timing["success_model"][1] += sl.stop - sl.start
            succ[sl], prog[sl] = labels.success, labels.reward
            t0 = time.perf_counter()
            rew[sl] = bt.label(view).reward
            timing["bradley_terry"][0] += time.perf_counter() - t0
            timing["bradley_terry"][1] += sl.stop - sl.start
        gs, gp = store.columns["sim.success"], store.columns["sim.progress"]
        raw = sample_segments(
            store.episode_slices(), store.group, eval_pairs, segment_length, np.random.default_rng(seed + 7)
        )
        pairs = progress_preferences(raw, gp)
        decided = [p for p in pairs if p.preference is not Preference.EQUAL]

        acc, n_acc = pair_accuracy(decided, rew, gp, 0.0)
        acc2, n_acc2 = pair_accuracy(decided, rew, gp, 0.02)
        behaviours = sorted(set(store.behavior))
        per_behavior = {}
        for b in behaviours:
            m = np.isin(store.episode, [i for i, x in enumerate(store.behavior) if x == b])
            per_behavior[b] = {
                "frames": int(m.sum()),
                "success_frames": int(gs[m].sum()),
                "progress_spearman": spearman(prog[m], gp[m]),
            }
        rows[task] = {
            "episodes": store.num_episodes,
            "frames": store.num_frames,
            "success_frames": int(gs.sum()),
            "success_auroc": auroc(gs, succ),
            "progress_spearman": spearman(prog, gp),
            "progress_spearman_per_episode": float(
                np.nanmean([spearman(prog[sl], gp[sl]) for sl in store.episode_slices()])
            ),
            "bt_reward_spearman": spearman(rew, gp),
            "bt_accuracy": acc,
            "bt_pairs": n_acc,
            "bt_accuracy_margin_0.02": acc2,
            "bt_pairs_margin_0.02": n_acc2,
            "by_behavior": per_behavior,
        }
        for k, v in (("s", succ), ("p", prog), ("gs", gs), ("gp", gp), ("r", rew)):
            pooled[k].append(v)
    cat = {k: np.concatenate(v) for k, v in pooled.items()}
    rows["both"] = {
        "frames": int(len(cat["gs"])),
        "success_frames": int(cat["gs"].sum()),
        "success_auroc": auroc(cat["gs"], cat["s"]),
        "progress_spearman": spearman(cat["p"], cat["gp"]),
        "progress_spearman_per_episode": float(
            np.average(
                [rows[t]["progress_spearman_per_episode"] for t in TASKS],
                weights=[rows[t]["episodes"] for t in TASKS],
            )
        ),
        "bt_reward_spearman": spearman(cat["r"], cat["gp"]),
        "bt_accuracy": float(
            np.average([rows[t]["bt_accuracy"] for t in TASKS], weights=[rows[t]["bt_pairs"] for t in TASKS])
        ),
        "bt_pairs": int(sum(rows[t]["bt_pairs"] for t in TASKS)),
    }
    fps = {k: n / s if s > 0 else None for k, (s, n) in timing.items()}
    return {"tasks": rows, "labeling_frames_per_second": fps, "cameras": cams}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| held-out | frames (success) | success AUROC | progress Spearman (per-episode mean) | "
        "BT accuracy (pairs) | BT acc., |dp|>0.02 (pairs) | BT reward Spearman |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in result["tasks"].items():
        m2 = (
            f"{r['bt_accuracy_margin_0.02']:.3f} ({r['bt_pairs_margin_0.02']})"
            if "bt_accuracy_margin_0.02" in r
            else ""
        )
        lines.append(
            f"| {name} | {r['frames']} ({r['success_frames']}) | {r['success_auroc']:.3f} | "
            f"{r['progress_spearman']:.3f} ({r.get('progress_spearman_per_episode', float('nan')):.3f}) | "
            f"{r['bt_accuracy']:.3f} ({r['bt_pairs']}) | {m2} | "
            f"{r['bt_reward_spearman']:.3f} |"
        )
    fps = result["labeling_frames_per_second"]
    lines.append(
        f"\nlabeling frames/s (CPU, {len(result['cameras'])} camera(s), batch 256): success_model "
        f"{fps['success_model']:.0f}, bradley_terry {fps['bradley_terry']:.0f}"
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/rewards_bench")
    ap.add_argument("--train_episodes", type=int, default=120)
    ap.add_argument("--test_episodes", type=int, default=36)
    ap.add_argument(
        "--extra_train_episodes", type=int, default=240, help="a second training set per task (seed 3)"
    )
    ap.add_argument("--image_size", type=int, default=64)
    ap.add_argument("--cameras", default="observation.images.front,observation.images.wrist")
    ap.add_argument("--success_steps", type=int, default=2500)
    ap.add_argument("--bt_steps", type=int, default=1200)
    ap.add_argument("--segment_length", type=int, default=2)
    ap.add_argument("--num_preferences", type=int, default=2000)
    ap.add_argument("--flip_rate", type=float, default=0.2)
    ap.add_argument("--label_smoothing", type=float, default=0.1)
    ap.add_argument("--eval_pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="extra train-reward flag for both models, k=v")
    ap.add_argument(
        "--bt_set", action="append", default=[], help="extra train-reward flag for the BT model, k=v"
    )
    ap.add_argument("--bt_batch", type=int, default=32, help="segment pairs per BT step")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    paths = make_data(
        work, args.train_episodes, args.test_episodes, args.extra_train_episodes, args.image_size
    )
    train_sets = [d for t in TASKS for d in paths[t]["train"]]
    extra = dict(s.split("=", 1) for s in args.set)
    extra.setdefault("model.cameras", args.cameras)
    sm = train(
        "success",
        train_sets,
        work / "success",
        args.success_steps,
        args.seed,
        {"batch_size": 32, "progress_weight": 2.0, **extra},
    )
    bt = train(
        "bradley_terry",
        train_sets,
        work / "bradley_terry",
        args.bt_steps,
        args.seed,
        {
            "batch_size": args.bt_batch,
            "segment_length": args.segment_length,
            "num_preferences": args.num_preferences,
            "flip_rate": args.flip_rate,
            "label_smoothing": args.label_smoothing,
            **extra,
            **dict(s.split("=", 1) for s in args.bt_set),
        },
    )
    result = evaluate(
        paths, work / "success", work / "bradley_terry", args.seed, args.eval_pairs, args.segment_length
    )
    result.update(
        {
            "paths": paths,
            "args": vars(args),
            "training": {
                k: {kk: vv for kk, vv in v.items() if kk != "history"}
                for k, v in (("success", sm), ("bradley_terry", bt))
            },
        }
    )
    print(table(result))
    text = json.dumps(result, indent=2, default=float) + "\n"
    (work / "results.json").write_text(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
