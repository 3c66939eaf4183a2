"""Diffusion vs flow matching vs BC on PushT and PickPlace, trained on the CPU from at most 200 expert demos, and
PickPlace driven only by a trajectory sketch or a goal sketch; success per split with 95% CIs and training time.

Every experiment is the real pipeline: ``ember collect`` datasets (LeRobot v3), ``ember.train.train`` (the one
accelerate loop) and ``ember.eval.run_eval`` (seeded vector-env rollouts on every split, videos, report.md).
Results are appended to ``bench/results/learn/results.json`` as each experiment finishes, so a long run can be
watched and resumed (``--skip-done``); ``--table`` prints the Markdown table of what is there.

Observations: both tasks use the robot state and the privileged environment state (object poses), not cameras: on
a shared 2-core CPU this is what trains in minutes. In PickPlace the goal one-hots of that state are hidden
(``--mask_state_names='goal_*'``) in every conditioned experiment, so the conditioning is the only place the target
comes from: two keypoints (KITE; the comparison of the three heads), a trajectory sketch or a goal sketch (drawn in
the front camera, read by a small CNN, late fusion). The evaluation conditioning is the hindsight of the scripted
expert on the evaluation seed, made by the same code as the training conditioning. The plain ``pickplace/<head>``
rows keep the goal in the state instead (one-hots and the goal cube's and pad's positions).

    .venv/bin/python bench/learn/run.py                       # everything (hours on 2 cores)
    .venv/bin/python bench/learn/run.py --only pusht/diffusion --steps 500 --episodes 10
    .venv/bin/python bench/learn/run.py --table
    # PushT diffusion at the paper's UNet size, on a GPU (7.7 min on one H100):
    .venv/bin/python bench/learn/run.py --only pusht/diffusion --set 'denoiser.down_dims=(256,512,1024)' \
        --batch-size 256 --lr 3e-4 --steps 14000 --workers 12 --out bench/results/pusht_gpu
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
from ember.conditioning.preload import preload_triton  # noqa: E402

preload_triton()

STATE_KEYS = ("observation.state", "observation.environment_state")
SECTION = "experiments"  # the section of results.json that holds the experiments (bench/results.py)
SPLITS = ("train", "heldout_goal", "heldout_object", "heldout_scene")


@dataclass(frozen=True)
class TaskSpec:
    task: str
    collect: dict[str, Any]
    steps: int
    """Training steps (batch 64)."""
    policy: dict[str, Any] = field(default_factory=dict)
    chance: float | None = None
    """Success of a policy that acts perfectly on a uniformly random target (conditioned experiments)."""


TASKS: dict[str, TaskSpec] = {
    "pusht": TaskSpec("PushT", {}, steps=6000),
    "pickplace": TaskSpec(
        "PickPlace", {"obs_mode": "pixels", "cameras": ("front",), "image_size": 96}, steps=4000, chance=1 / 9
    ),
}


@dataclass(frozen=True)
class Experiment:
    task: str
    policy: str
    overrides: dict[str, Any] = field(default_factory=dict)
    mask_goal: bool = False
    label: str = ""
    hidden_names: tuple[str, ...] = ()
    """Masked state names the auxiliary hidden-state loss predicts (``ember train --hidden_state_names``)."""
    ground_names: tuple[str, ...] = ()
    """Ground the decoded goal on the observed objects (``ember train --ground_hidden_names``)."""

    @property
    def name(self) -> str:
        return f"{self.task}/{self.policy}" + (f"+{self.label}" if self.label else "")


def merge(*parts: dict[str, Any]) -> dict[str, Any]:
    """Policy-config overrides merged group by group (``{"conditioning": {...}}`` parts combine)."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            out[key] = (
                merge(out[key], value)
                if isinstance(value, dict) and isinstance(out.get(key), dict)
                else value
            )
    return out


def kinds(*names: str, **conditioning: Any) -> dict[str, Any]:
    return {"conditioning": {"kinds": names, **conditioning}}


SKETCH = kinds(camera="front", pool=2)
KEYPOINTS = kinds(camera="front")
STACKED = {"conditioning": {"fusion": "stacked"}}
GOAL_ENCODER = merge(
    {"hidden_state_weight": 1.0, "conditioning_learns_from": "hidden_state"}, kinds(encoder_width=32)
)
GOAL_DECODER = merge({"hidden_state_weight": 1.0, "conditioning_as_state": True}, kinds(encoder_width=32))
GOAL_POSITIONS = ("goal_object.*", "goal_pad.*")
GOAL_GROUNDING = ("goal_object:object_*", "goal_pad:pad_*")
EXPERIMENTS: list[Experiment] = [  # riskiest first, so a long run reports what matters early
    Experiment("pusht", "diffusion"),
    Experiment(
        "pickplace", "diffusion", merge(SKETCH, kinds("trajectory_sketch")), True, "trajectory_sketch"
    ),
    Experiment("pusht", "bc"),
    Experiment("pickplace", "bc"),
    Experiment("pickplace", "diffusion"),
    Experiment("pickplace", "diffusion", merge(SKETCH, kinds("goal_sketch")), True, "goal_sketch"),
    # the goal sketch read beside the episode's first frame (one CNN over both, stacked): which object moved
    Experiment(
        "pickplace",
        "diffusion",
        merge(SKETCH, STACKED, kinds("goal_sketch", "initial_image")),
        True,
        "goal_sketch+initial_image",
    ),
    Experiment("pusht", "flow"),
    Experiment("pickplace", "flow"),
    # flow matching learned PickPlace fastest at this budget: the same sketch-only experiments with its head
    Experiment("pickplace", "flow", merge(SKETCH, kinds("trajectory_sketch")), True, "trajectory_sketch"),
    Experiment(
        "pickplace",
        "flow",
        merge(SKETCH, STACKED, kinds("goal_sketch", "initial_image")),
        True,
        "goal_sketch+initial_image",
    ),
    Experiment("pickplace", "flow", merge(SKETCH, kinds("goal_sketch")), True, "goal_sketch"),
    # the goal sketch beside the first frame, read by an encoder that learns only to name the goal's positions
    # (bench/learn/probe_goal.py: it then names the target on unseen episodes; the action loss made it memorize)
    Experiment(
        "pickplace",
        "flow",
        merge(GOAL_ENCODER, SKETCH, STACKED, kinds("goal_sketch", "initial_image")),
        True,
        "goal_sketch+initial_image+goal_encoder",
        GOAL_POSITIONS,
    ),
    # ... and decoded into the goal's positions, which the action head reads as if they were in the state
    Experiment(
        "pickplace",
        "flow",
        merge(GOAL_DECODER, SKETCH, STACKED, kinds("goal_sketch", "initial_image")),
        True,
        "goal_sketch+initial_image+goal_decoder",
        GOAL_POSITIONS,
    ),
    Experiment(
        "pickplace",
        "diffusion",
        merge(GOAL_DECODER, SKETCH, STACKED, kinds("goal_sketch", "initial_image")),
        True,
        "goal_sketch+initial_image+goal_decoder",
        GOAL_POSITIONS,
    ),
    Experiment(
        "pickplace",
        "flow",
        merge(GOAL_DECODER, SKETCH, kinds("goal_sketch")),
        True,
        "goal_sketch+goal_decoder",
        GOAL_POSITIONS,
    ),
    # ... and the decoded goal grounded on the nearest observed cube and pad (a pointer, not a position)
    Experiment(
        "pickplace",
        "flow",
        merge(GOAL_DECODER, SKETCH, STACKED, kinds("goal_sketch", "initial_image")),
        True,
        "goal_sketch+initial_image+grounded_goal",
        GOAL_POSITIONS,
        GOAL_GROUNDING,
    ),
    Experiment(
        "pickplace",
        "diffusion",
        merge(GOAL_DECODER, SKETCH, STACKED, kinds("goal_sketch", "initial_image")),
        True,
        "goal_sketch+initial_image+grounded_goal",
        GOAL_POSITIONS,
        GOAL_GROUNDING,
    ),
    # ... read by colour only (sketch = outlines of coloured objects, first frame as chroma): held-out scenes
    Experiment(
        "pickplace",
        "flow",
        merge(GOAL_DECODER, SKETCH, STACKED, kinds("goal_sketch", "initial_image", chroma=True)),
        True,
        "goal_sketch+initial_image+grounded_goal+chroma",
        GOAL_POSITIONS,
        GOAL_GROUNDING,
    ),
    # the target as two keypoints (KITE): what the three heads are compared on in PickPlace
    Experiment("pickplace", "diffusion", merge(KEYPOINTS, kinds("keypoints")), True, "keypoints"),
    Experiment("pickplace", "bc", merge(KEYPOINTS, kinds("keypoints")), True, "keypoints"),
    Experiment("pickplace", "flow", merge(KEYPOINTS, kinds("keypoints")), True, "keypoints"),
]


def collect_dataset(spec: TaskSpec, data_dir: Path, episodes: int) -> Path:
    from ember.collect import CollectConfig, collect

    root = data_dir / spec.task.lower()
    if (root / "meta" / "info.json").is_file():
        return root
    cfg = CollectConfig(task=spec.task, num_episodes=episodes, out=str(root), seed=0, **spec.collect)
    print(f"collecting {episodes} {spec.task} demos -> {root}", flush=True)
    collect(cfg, quiet=True)
    return root


def train_one(
    exp: Experiment,
    dataset: Path,
    out: Path,
    steps: int,
    threads: int,
    seed: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    num_workers: int = 0,
) -> dict[str, Any]:
    from ember.policies import make_policy_config
    from ember.train import TrainConfig, train

    spec = TASKS[exp.task]
    ckpt = out / "train" / "checkpoints" / "last" / "pretrained_model"
    metrics_file = out / "train" / "metrics.json"
    if (
        ckpt.is_dir()
        and metrics_file.is_file()
        and json.loads(metrics_file.read_text()).get("steps") == steps
    ):
        m = json.loads(metrics_file.read_text())
        if "train_seconds" in m:
            return {"train_seconds": m["train_seconds"], "steps": m["steps"], "final_loss": m["final_loss"]}
    cfg = TrainConfig(
        dataset=str(dataset),
        out=str(out / "train"),
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        num_workers=num_workers,
        obs_keys=STATE_KEYS,
        num_threads=threads,
        save_every=max(1, steps // 4),
        log_every=50,
        resume=(out / "train" / "checkpoints" / "last").exists(),
        overwrite=not (out / "train" / "checkpoints" / "last").exists(),
    )
    cfg.optim.lr = lr
    cfg.policy = make_policy_config(exp.policy, **merge(spec.policy, exp.overrides))
    if exp.mask_goal:
        cfg.mask_state_names = ("goal_*",)
    cfg.hidden_state_names = exp.hidden_names
    cfg.ground_hidden_names = exp.ground_names
    result = train(cfg, quiet=True)
    m = json.loads(metrics_file.read_text())
    return {"train_seconds": m["train_seconds"], "steps": result.steps, "final_loss": result.final_loss}


def evaluate_one(exp: Experiment, out: Path, episodes: int, splits: tuple[str, ...]) -> dict[str, Any]:
    from ember.eval import EvalConfig, run_eval

    spec = TASKS[exp.task]
    cfg = EvalConfig(
        policy_path=str(out / "train"),
        task=spec.task,
        splits=splits,
        num_episodes=episodes,
        batch_size=10,
        num_videos=2,
        out=str(out / "eval"),
        overwrite=True,
    )
    result, _ = run_eval(cfg, quiet=True)
    per = result.per_split or {result.split: result}
    return {
        name: {
            "success_rate": r.success_rate,
            "ci95": list(r.success_ci95),
            "episodes": r.num_episodes,
            "mean_max_coverage": r.mean_max_coverage,
            "eval_seconds": r.seconds,
            "expert_success": _expert_rate(r),
        }
        for name, r in per.items()
    }


def _expert_rate(result: Any) -> float | None:
    flags = [e.expert_success for e in result.episodes if e.expert_success is not None]
    return sum(flags) / len(flags) if flags else None


def table(results: dict[str, Any]) -> str:
    lines = [
        "| experiment | training | " + " | ".join(SPLITS) + " | chance |",
        "|---|---|" + "---|" * len(SPLITS) + "---|",
    ]
    for name, r in results["experiments"].items():
        if "splits" not in r:
            continue
        cells = []
        for split in SPLITS:
            s = r["splits"].get(split)
            cells.append(
                f"{100 * s['success_rate']:.0f}% ({100 * s['ci95'][0]:.0f}-{100 * s['ci95'][1]:.0f})"
                if s
                else "-"
            )
        chance = f"{100 * r['chance']:.0f}%" if r.get("chance") else "-"
        training = f"{r['steps']} steps, {r['train_seconds'] / 60:.0f} min"
        lines.append(f"| {name} | {training} | " + " | ".join(cells) + f" | {chance} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated experiment names (pusht/diffusion, ...)")
    parser.add_argument("--steps", type=int, default=0, help="override every task's training steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--workers", type=int, default=0, help="data-loader workers (a GPU run wants several)"
    )
    parser.add_argument("--demos", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per split")
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench/results/learn"))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="policy config override for every selected experiment (e.g. optimizer_lr=3e-4)",
    )
    parser.add_argument("--skip-done", action="store_true", help="skip experiments already in results.json")
    parser.add_argument("--table", action="store_true", help="print the table of results.json and exit")
    parser.add_argument("--merge", default="", help="with --table: more result folders, later ones win")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    results_file = out / "results.json"
    results = load_results(results_file, SECTION)
    if args.table:
        for extra in filter(None, args.merge.split(",")):
            results[SECTION].update(load_results(Path(extra) / "results.json", SECTION)[SECTION])
        print(table(results))
        return
    wanted = [e for e in EXPERIMENTS if not args.only or e.name in args.only.split(",")]
    extra = merge(*(_parse_set(item) for item in args.set))
    if extra:
        wanted = [
            Experiment(
                e.task,
                e.policy,
                merge(e.overrides, extra),
                e.mask_goal,
                e.label,
                e.hidden_names,
                e.ground_names,
            )
            for e in wanted
        ]
    splits = tuple(args.splits.split(","))
    for exp in wanted:
        if (
            args.skip_done
            and exp.name in results["experiments"]
            and "splits" in results["experiments"][exp.name]
        ):
            continue
        spec = TASKS[exp.task]
        dataset = collect_dataset(spec, out / "data", args.demos)
        steps = args.steps or spec.steps
        exp_dir = out / exp.name.replace("/", "_").replace("+", "_")
        t0 = time.perf_counter()
        print(
            f"[{exp.name}] training {steps} steps (threads={args.threads}, load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        trained = train_one(
            exp, dataset, exp_dir, steps, args.threads, args.seed, args.batch_size, args.lr, args.workers
        )
        row = {
            "task": spec.task,
            "policy": exp.policy,
            "conditioning": list(exp.overrides.get("conditioning", {}).get("kinds", ())),
            "goal_hidden": exp.mask_goal,
            "demos": args.demos,
            "chance": spec.chance if exp.mask_goal else None,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            **trained,
        }
        save_row(results_file, exp.name, row, SECTION)
        print(
            f"[{exp.name}] trained in {trained['train_seconds'] / 60:.1f} min; evaluating {args.episodes} "
            f"episodes x {len(splits)} splits",
            flush=True,
        )
        row["splits"] = evaluate_one(exp, exp_dir, args.episodes, splits)
        row["wall_seconds"] = time.perf_counter() - t0
        save_row(results_file, exp.name, row, SECTION)
        rates = ", ".join(f"{k} {100 * v['success_rate']:.0f}%" for k, v in row["splits"].items())
        print(f"[{exp.name}] {rates}", flush=True)
    print(table(load_results(results_file, SECTION)))


def _parse_set(item: str) -> dict[str, Any]:
    """``group.field=value`` (``denoiser.down_dims=(256,512,1024)``) as a nested override, the value read as a
    Python literal when it is one (``3e-4``, ``(256, 512)``)."""
    import ast

    key, sep, value = item.partition("=")
    if not sep:
        raise SystemExit(f"--set expects FIELD=VALUE, got {item!r}")
    try:
        parsed: Any = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    for part in reversed(key.split(".")[1:]):
        parsed = {part: parsed}
    return {key.split(".")[0]: parsed}


if __name__ == "__main__":
    main()
