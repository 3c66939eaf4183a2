"""Offline RL on mixed-quality PickPlace data: BC, filtered BC, diffusion, IQL, IQL-weighted diffusion and
diffusion + V-GPS, trained on the same dataset and evaluated on the same seeds.

The data is ``ember collect --behavior=mixed`` PickPlace (default 300 episodes: 20% scripted expert, 40% the
expert with action noise, 40% failing: a wrong target or an early stop), with the recorded sparse reward
(``next.reward`` = 1 on the frame that succeeds; ``next.done`` there). Policies read the robot state and the
privileged object state (goal included), which the issue allows for this comparison; the cameras recorded beside
them (front + wrist, 64 px) are what a learned reward model reads (``--reward=learned``).

Every row is the real pipeline: ``ember.train.train`` (the accelerate loop; ``--algorithm=iql`` for the IQL rows,
``--episode_filter=next.success`` for filtered BC), ``ember.policies.rl.modeling_vgps.build_vgps`` for V-GPS (the
diffusion row's checkpoint steered by the IQL-diffusion row's critic, so both use the same executed chunk), and
``ember.eval.run_eval`` (seeded vector-env rollouts, Wilson 95% intervals). Results are appended to
``--out``/results.json as each row finishes (``--table`` prints them), so a long run can be resumed.

    .venv/bin/python bench/offline_rl/run.py                          # every row (about 1.5 h on 2 busy cores)
    .venv/bin/python bench/offline_rl/run.py --only diffusion iql_diffusion vgps_diffusion
    .venv/bin/python bench/offline_rl/run.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.results import load_results, save_row  # noqa: E402

STATE_KEYS = ("observation.state", "observation.environment_state")
MIX = "expert:0.2,noisy:0.4,failing:0.4"


@dataclass(frozen=True)
class Row:
    """One trained policy: a policy type, an algorithm and their overrides."""

    policy: str
    algorithm: str = "supervised"
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    algorithm_overrides: dict[str, Any] = field(default_factory=dict)
    episode_filter: str = ""
    steps_factor: float = 1.0
    vgps_of: tuple[str, str] = ("", "")
    """(base row, critic row): a V-GPS row is built from two trained rows, not trained."""
    label: str = ""


BC = {"loss": "mse"}
IQL = {"beta": 10.0, "expectile": 0.7, "gamma": 0.99}
ROWS: dict[str, Row] = {
    "bc": Row("bc", policy_overrides=BC, label="BC (MLP, MSE)"),
    "filtered_bc": Row(
        "bc",
        policy_overrides=BC,
        episode_filter="next.success",
        label="filtered BC (successful episodes only)",
    ),
    "iql_bc": Row("bc", "iql", BC, IQL, label="IQL, MLP actor (AWR)"),
    "riql_bc": Row("bc", "riql", BC, IQL, label="RIQL, MLP actor (AWR)"),
    "diffusion": Row("diffusion", label="diffusion (BC)"),
    "filtered_diffusion": Row("diffusion", episode_filter="next.success", label="filtered diffusion"),
    "iql_diffusion": Row("diffusion", "iql", {}, IQL, label="IQL-weighted diffusion"),
    "vgps_diffusion": Row("vgps", vgps_of=("diffusion", "iql_diffusion"), label="diffusion + V-GPS (K=8)"),
    "flow": Row("flow", label="flow matching (BC)"),
    "filtered_flow": Row("flow", episode_filter="next.success", label="filtered flow matching"),
    "iql_flow": Row("flow", "iql", {}, IQL, label="IQL-weighted flow matching"),
    "riql_flow": Row("flow", "riql", {}, IQL, label="RIQL-weighted flow matching"),
    "vgps_flow": Row("vgps", vgps_of=("flow", "iql_flow"), label="flow matching + V-GPS (K=8)"),
}


def collect_data(root: Path, episodes: int, seed: int) -> Path:
    from ember.collect import CollectConfig, collect

    if (root / "meta" / "info.json").is_file():
        return root
    cfg = CollectConfig(
        task="PickPlace",
        behavior="mixed",
        mix=MIX,
        num_episodes=episodes,
        seed=seed,
        obs_mode="pixels",
        cameras=("front", "wrist"),
        image_size=64,
        out=str(root),
    )
    print(f"collecting {episodes} mixed PickPlace episodes -> {root}", flush=True)
    collect(cfg, quiet=True)
    return root


def train_row(row: Row, dataset: Path, out: Path, steps: int, seed: int, reward_key: str) -> dict[str, Any]:
    from ember.algorithms import make_algorithm_config
    from ember.policies import make_policy_config
    from ember.train import TrainConfig, train

    metrics_file = out / "train" / "metrics.json"
    if metrics_file.is_file() and json.loads(metrics_file.read_text()).get("steps") == steps:
        m = json.loads(metrics_file.read_text())
        return {"train_seconds": m["train_seconds"], "steps": m["steps"], "final_loss": m["final_loss"]}
    cfg = TrainConfig(
        dataset=str(dataset),
        out=str(out / "train"),
        steps=steps,
        batch_size=64,
        seed=seed,
        obs_keys=STATE_KEYS,
        num_threads=1,
        log_every=50,
        overwrite=True,
        episode_filter=row.episode_filter,
    )
    cfg.policy = make_policy_config(row.policy, **row.policy_overrides)
    cfg.algorithm = make_algorithm_config(row.algorithm, **row.algorithm_overrides)
    if row.algorithm != "supervised":
        cfg.algorithm.reward_key = reward_key
    result = train(cfg, quiet=True)
    m = json.loads(metrics_file.read_text())
    return {"train_seconds": m["train_seconds"], "steps": result.steps, "final_loss": result.final_loss}


def build_vgps_row(
    row: Row, work: Path, out: Path, num_samples: int, suffix: str, tag: str
) -> dict[str, Any]:
    """The base row trained on the same data (``tag``), the critic row with the same reward (``suffix``)."""
    from ember.policies.rl.modeling_vgps import build_vgps

    base_name, critic_name = row.vgps_of
    base, critic = (
        work / name / "train" / "checkpoints" / "last"
        for name in (base_name + tag, critic_name + suffix + tag)
    )
    build_vgps(base / "pretrained_model", critic / "critic", num_samples=num_samples).save_pretrained(
        out / "train"
    )
    return {"train_seconds": 0.0, "steps": 0, "final_loss": None, "built_from": [str(base), str(critic)]}


def evaluate(policy_path: Path, out: Path, episodes: int, seed: int) -> dict[str, Any]:
    from ember.eval import EvalConfig, run_eval

    cfg = EvalConfig(
        policy_path=str(policy_path),
        task="PickPlace",
        splits=("train",),
        num_episodes=episodes,
        batch_size=10,
        num_videos=2,
        seed=seed,
        out=str(out / "eval"),
        overwrite=True,
    )
    result, _ = run_eval(cfg, quiet=True)
    return {
        "success_rate": result.success_rate,
        "ci95": list(result.success_ci95),
        "episodes": result.num_episodes,
        "eval_seconds": result.seconds,
    }


def table(results: dict[str, Any]) -> str:
    lines = ["| row | reward | training | success (50 seeds, 95% CI) |", "|---|---|---|---|"]
    for name, r in results["rows"].items():
        e = r["eval"]
        training = (
            f"{r['steps']} steps, {r['train_seconds'] / 60:.0f} min" if r["steps"] else "built (no training)"
        )
        lines.append(
            f"| {r.get('label', name)} | {r.get('reward', '-')} | {training} | "
            f"{100 * e['success_rate']:.0f}% ({100 * e['ci95'][0]:.0f}-{100 * e['ci95'][1]:.0f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=str(ROOT / "outputs" / "bench" / "offline_rl"))
    parser.add_argument(
        "--dataset", default="", help="an existing mixed dataset (default: collect one in --work)"
    )
    parser.add_argument("--collect-episodes", type=int, default=300)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-seed", type=int, default=1_000_000)
    parser.add_argument("--reward", default="next.reward", help="reward column of the IQL rows")
    parser.add_argument("--vgps-samples", type=int, default=8)
    parser.add_argument(
        "--tag", default="", help="suffix of the rows' names (e.g. corrupt30 for a corrupted copy)"
    )
    parser.add_argument("--only", nargs="*", default=list(ROWS))
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    work = Path(args.work)
    results_file = work / "results.json"
    if args.table:
        print(table(load_results(results_file)))
        return
    unknown = [name for name in args.only if name not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; known: {list(ROWS)}")
    dataset = (
        Path(args.dataset)
        if args.dataset
        else collect_data(work / "data" / "pickplace_mixed", args.collect_episodes, 100_000)
    )
    suffix = "" if args.reward == "next.reward" else "@" + args.reward
    tag = f"#{args.tag}" if args.tag else ""
    for name in args.only:
        row = ROWS[name]
        key = (name + suffix if row.algorithm != "supervised" or row.vgps_of[0] else name) + tag
        out = work / key
        t0 = time.time()
        if row.vgps_of[0]:
            trained = build_vgps_row(row, work, out, args.vgps_samples, suffix, tag)
        else:
            steps = int(args.steps * row.steps_factor)
            trained = train_row(row, dataset, out, steps, args.seed, args.reward)
        print(f"{key}: trained in {trained['train_seconds'] / 60:.1f} min; evaluating", flush=True)
        evaluated = evaluate(out / "train", out, args.episodes, args.eval_seed)
        save_row(
            results_file,
            key,
            {
                **trained,
                "label": row.label,
                "reward": args.reward if row.algorithm != "supervised" or row.vgps_of[0] else "-",
                "dataset": str(dataset),
                "eval": evaluated,
                "wall_seconds": time.time() - t0,
            },
        )
        print(
            f"{key}: {100 * evaluated['success_rate']:.0f}% ({100 * evaluated['ci95'][0]:.0f}-"
            f"{100 * evaluated['ci95'][1]:.0f})",
            flush=True,
        )
    print(table(load_results(results_file)))


if __name__ == "__main__":
    main()
