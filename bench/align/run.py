"""Preference alignment of a diffusion policy from its own sim rollouts (GRAPE-style trajectory preferences,
Diffusion-DPO), and the same with 30% of the labels flipped (DPO beside rDPO).

The pipeline, every stage the real one (cached in ``--work`` so a run resumes where it stopped):

1. ``ember collect``: scripted-expert PickPlace demonstrations (robot state + privileged object state).
2. ``ember train``: the SFT diffusion policy on them.
3. ``ember eval --record``: the SFT policy's own rollouts on seeds apart from the evaluation seeds
   (``--rollouts_per_seed`` of each), written as a dataset with the simulator's ``sim.progress`` / ``sim.success``
   / ``sim.seed`` per frame.
4. ``ember label --labeler=ground_truth_preference --segment_length=0``: pairs of whole rollouts of the same
   instruction (or, with ``--rollouts-per-seed K``, of the same seed: ``--pairs_within=seed``, GRAPE's
   comparison), the one that got further preferred (``--progress-from sim_success``: successful over failed
   only); ``--labeler.flip_rate=0.3`` for the noisy-label rows.
5. ``ember train --algorithm=dpo|rdpo``: from the SFT checkpoint (the frozen reference), on those pairs.
6. ``ember eval``: SFT and every aligned policy on the same seeds (Wilson 95% intervals).

Results go to ``--out``/results.json row by row; ``--table`` prints them.

    .venv/bin/python bench/align/run.py                 # every row
    .venv/bin/python bench/align/run.py --only sft dpo  # a subset
    .venv/bin/python bench/align/run.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.results import load_results, save_row  # noqa: E402

TASK = "PickPlace"
STATE_KEYS = ("observation.state", "observation.environment_state")


@dataclass(frozen=True)
class Row:
    """One aligned policy: the preference loss and the labels it learns from."""

    algorithm: str
    label_flip_rate: float = 0.0
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""


ROWS: dict[str, Row] = {
    "dpo": Row("dpo", label="DPO, clean labels"),
    "ipo": Row("ipo", label="IPO, clean labels"),
    "dpo_flip30": Row("dpo", 0.3, label="DPO, 30% of labels flipped"),
    "rdpo_flip30": Row("rdpo", 0.3, {"flip_rate": 0.3}, label="rDPO (flip rate 0.3), 30% flipped"),
}


def collect_demos(root: Path, episodes: int, seed: int) -> Path:
    from ember.collect import CollectConfig, collect

    if not (root / "meta" / "info.json").is_file():
        print(f"collecting {episodes} expert {TASK} episodes -> {root}", flush=True)
        collect(CollectConfig(task=TASK, num_episodes=episodes, seed=seed, out=str(root)), quiet=True)
    return root


def train_sft(dataset: Path, out: Path, steps: int, seed: int) -> Path:
    from ember.policies import make_policy_config
    from ember.train import TrainConfig, train

    ckpt = out / "checkpoints" / "last" / "pretrained_model"
    if not ckpt.is_dir():
        print(f"training the SFT diffusion policy ({steps} steps) -> {out}", flush=True)
        cfg = TrainConfig(
            dataset=str(dataset),
            out=str(out),
            steps=steps,
            batch_size=64,
            seed=seed,
            obs_keys=STATE_KEYS,
            num_threads=1,
            log_every=100,
            overwrite=True,
        )
        cfg.policy = make_policy_config("diffusion")
        train(cfg, quiet=True)
    return ckpt


def evaluate(
    policy: Path, out: Path, episodes: int, seed: int, record: Path | None = None, rollouts_per_seed: int = 1
) -> dict[str, Any]:
    from ember.eval import EvalConfig, run_eval

    cfg = EvalConfig(
        policy_path=str(policy),
        task=TASK,
        splits=("train",),
        num_episodes=episodes,
        batch_size=10,
        num_videos=0 if record else 2,
        seed=seed,
        out=str(out),
        overwrite=True,
        num_threads=1,
        record=str(record) if record else "",
        rollouts_per_seed=rollouts_per_seed,
    )
    result, _ = run_eval(cfg, quiet=True)
    return {
        "success_rate": result.success_rate,
        "ci95": list(result.success_ci95),
        "episodes": result.num_episodes,
        "eval_seconds": result.seconds,
    }


def rollouts(sft: Path, work: Path, episodes: int, seed: int, per_seed: int = 1) -> Path:
    name = f"rollouts_{episodes}" + (f"_x{per_seed}" if per_seed > 1 else "")
    root = work / name  # one split: the dataset is this folder itself
    if not (root / "meta" / "info.json").is_file():
        print(
            f"recording {episodes} SFT rollouts (seeds {seed}.., {per_seed} per seed) -> {root}", flush=True
        )
        summary = evaluate(
            sft, work / f"{root.name}_eval", episodes, seed, record=root, rollouts_per_seed=per_seed
        )
        (root.parent / f"{root.name}_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return root


def label_pairs(
    dataset: Path,
    flip_rate: float,
    num_pairs: int,
    seed: int,
    progress_from: str = "auto",
    within: str = "instruction",
) -> Path:
    from ember.rewards.label import LabelConfig, label, make_labeler_config

    name = f"ground_truth_preference_{progress_from}_{within}_flip{int(round(flip_rate * 100))}"
    out = dataset / "labels" / f"{name}.preferences.jsonl"
    if not out.is_file():
        cfg = LabelConfig(
            dataset=str(dataset),
            num_pairs=num_pairs,
            segment_length=0,
            seed=seed,
            quiet=True,
            preferences_out=str(out),
            pairs_within=within,
            labeler=make_labeler_config(
                "ground_truth_preference", flip_rate=flip_rate, seed=seed, progress_from=progress_from
            ),
        )
        result = label(cfg)
        print(
            f"labeled {sum(result.counts.values())} pairs (flip {flip_rate:g}): {result.counts}", flush=True
        )
    return out


def train_aligned(
    row: Row,
    dataset: Path,
    sft: Path,
    pairs: Path,
    out: Path,
    steps: int,
    lr: float,
    beta: float,
    sft_weight: float,
    seed: int,
) -> dict[str, Any]:
    from ember.algorithms import make_algorithm_config
    from ember.policies import make_policy_config
    from ember.train import TrainConfig, train

    metrics_file = out / "metrics.json"
    if not (metrics_file.is_file() and json.loads(metrics_file.read_text()).get("steps") == steps):
        cfg = TrainConfig(
            dataset=str(dataset),
            out=str(out),
            steps=steps,
            batch_size=64,
            seed=seed,
            obs_keys=STATE_KEYS,
            num_threads=1,
            log_every=25,
            overwrite=True,
        )
        cfg.policy = make_policy_config("diffusion")
        cfg.algorithm = make_algorithm_config(
            row.algorithm,
            reference=str(sft),
            preferences=str(pairs),
            beta=beta,
            sft_weight=sft_weight,
            **row.overrides,
        )
        cfg.optim.lr, cfg.optim.warmup_steps = lr, min(50, steps // 10)
        train(cfg, quiet=True)
    m = json.loads(metrics_file.read_text())
    return {
        "train_seconds": m.get("train_seconds"),
        "steps": m.get("steps"),
        "final_loss": m.get("final_loss"),
    }


def table(results: dict[str, Any]) -> str:
    rows = results.get("rows", {})
    sft = rows.get("sft", {}).get("success_rate")
    lines = [
        "| row | policy | beta | lr | steps | rollouts | success | 95% CI | vs SFT (points) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in rows.items():
        gain = "" if sft is None or name == "sft" else f"{100 * (r['success_rate'] - sft):+.0f}"
        lo, hi = r["ci95"]
        knobs = " | ".join(str(r.get(k, "")) for k in ("beta", "lr", "steps", "rollouts"))
        lines.append(
            f"| {name} | {r.get('label', name)} | {knobs} | {100 * r['success_rate']:.0f}% | "
            f"{100 * lo:.0f}-{100 * hi:.0f}% | {gain} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=str(ROOT / "outputs/bench/align"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/align"))
    ap.add_argument("--only", nargs="*", default=None, help=f"rows: sft {' '.join(ROWS)}")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--demos", type=int, default=100)
    ap.add_argument("--sft-steps", type=int, default=3000)
    ap.add_argument("--rollouts", type=int, default=150)
    ap.add_argument("--pairs", type=int, default=600)
    ap.add_argument("--steps", type=int, default=400, help="preference-training steps")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--beta", type=float, default=20.0)
    ap.add_argument("--sft-weight", type=float, default=0.0)
    ap.add_argument(
        "--rollouts-per-seed",
        type=int,
        default=1,
        help="> 1: GRAPE pairs, rollouts of the same seed "
        "(ember label --pairs_within=seed) instead of pairs of the same instruction",
    )
    ap.add_argument(
        "--progress-from",
        default="auto",
        help="what the labeler compares: auto (sim.progress) or "
        "sim_success (successful over failed only; pairs of equal outcome are skipped)",
    )
    ap.add_argument("--tag", default="", help="suffix of the aligned rows' names and folders (a variant)")
    ap.add_argument("--episodes", type=int, default=50, help="evaluation episodes (same seeds for every row)")
    ap.add_argument("--eval-seed", type=int, default=100_000)
    ap.add_argument("--rollout-seed", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    results_file = Path(args.out) / "results.json"
    if args.table:
        print(table(load_results(results_file)))
        return
    settings = {k: v for k, v in vars(args).items() if k not in ("only", "table")}
    work = Path(args.work)
    wanted = args.only if args.only is not None else ["sft", *ROWS]
    unknown = [n for n in wanted if n != "sft" and n not in ROWS]
    if unknown:
        sys.exit(f"unknown rows {unknown}; choose from sft {' '.join(ROWS)}")
    demos = collect_demos(work / "demos", args.demos, args.seed)
    sft = train_sft(demos, work / "sft", args.sft_steps, args.seed)
    sft_seconds = json.loads((work / "sft" / "metrics.json").read_text()).get("train_seconds")
    if "sft" in wanted:
        row = evaluate(sft, work / "sft_eval", args.episodes, args.eval_seed)
        save_row(
            results_file,
            "sft",
            {
                "label": f"SFT diffusion ({args.sft_steps} steps, {args.demos} demos)",
                "train_seconds": sft_seconds,
                **row,
            },
            settings=settings,
        )
        print(f"sft: {row['success_rate']:.0%}", flush=True)
    aligned = [n for n in wanted if n in ROWS]
    if not aligned:
        return
    data = rollouts(sft, work, args.rollouts, args.rollout_seed, args.rollouts_per_seed)
    for name in aligned:
        spec = ROWS[name]
        within = "seed" if args.rollouts_per_seed > 1 else "instruction"
        pairs = label_pairs(data, spec.label_flip_rate, args.pairs, args.seed, args.progress_from, within)
        tagged = name + args.tag
        trained = train_aligned(
            spec, data, sft, pairs, work / tagged, args.steps, args.lr, args.beta, args.sft_weight, args.seed
        )
        row = evaluate(work / tagged, work / f"{tagged}_eval", args.episodes, args.eval_seed)
        variant = {
            "beta": args.beta,
            "lr": args.lr,
            "steps": args.steps,
            "sft_weight": args.sft_weight,
            "progress_from": args.progress_from,
            "rollouts": args.rollouts,
            "rollouts_per_seed": args.rollouts_per_seed,
        }
        save_row(results_file, tagged, {"label": spec.label, **variant, **trained, **row}, settings=settings)
        print(f"{tagged}: {row['success_rate']:.0%}", flush=True)
    print(table(load_results(results_file)))


if __name__ == "__main__":
    main()
