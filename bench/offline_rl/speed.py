"""Gradient steps per second: ember's IQL (``ember train --algorithm=iql``, its loader included) vs d3rlpy 2.8.1's.

Both train on one state-only dataset (``observation.state`` + ``observation.environment_state``; d3rlpy reads it
exported with ``ember.policies.rl.d3rlpy_export.to_mdp_dataset``), batch 256, one torch thread, the CPU:

- d3rlpy: ``IQLConfig(batch_size=256, 256x256 actor/critic/value encoders).create(device="cpu:0").fit(...)``, its
  defaults otherwise (no scalers, no logging: ``NoopAdapterFactory``); a ``fit`` callback stamps every step, so a
  step is d3rlpy's own transition sampling + its update.
- ember: the real loop, ``ember.train.train`` (DataLoader over ``WindowDataset``, batches moved to the device,
  ``IQL.update``, metrics recorded), a ``bc --policy.loss=mse`` MLP actor with ``hidden_dims=[256,256]``, critics
  ``--algorithm.hidden_dims=[256,256]``, ``n_obs_steps = horizon = n_action_steps = 1`` (one-step critics, as
  d3rlpy's), dropout 0 and no EMA (d3rlpy has neither; ``--ember-ema`` keeps ember's default EMA). ``IQL.update`` is
  wrapped to stamp the start of every call, so the time between stamps is one update plus fetching the next batch.

Each trial times ``--steps`` steps after ``--warmup`` steps; trials alternate d3rlpy / ember (``--repeats`` of
each, the order flipped every round) so load on a shared machine falls on both alike. The median trial of each is
reported (wall clock, and per second of the process's CPU time, which load on a shared machine disturbs less), with the load average, the parameter counts of both (so "same sizes" is checkable) and their ratio.

    nice -n 19 .venv/bin/python bench/offline_rl/speed.py [--dataset /tmp/orl/data/pp_mixed] [--steps 1000]
        [--warmup 100] [--repeats 3] [--out outputs/bench/offline_rl_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STATE_KEYS = ("observation.state", "observation.environment_state")
HIDDEN = (256, 256)


def _count(modules: Any) -> int:
    seen: set[int] = set()
    total = 0
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def time_d3rlpy(mdp: Any, steps: int, warmup: int, batch_size: int, seed: int) -> dict[str, Any]:
    import d3rlpy
    import torch

    torch.set_num_threads(1)
    d3rlpy.seed(seed)
    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=list(HIDDEN))
    algo = d3rlpy.algos.IQLConfig(
        batch_size=batch_size,
        actor_encoder_factory=encoder,
        critic_encoder_factory=encoder,
        value_encoder_factory=encoder,
    ).create(device="cpu:0")
    stamps: list[float] = []
    total = warmup + steps
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            algo.fit(
                mdp,
                n_steps=total,
                n_steps_per_epoch=total,
                show_progress=False,
                save_interval=10**9,
                logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
                callback=lambda _algo, _epoch, _step: stamps.append(
                    (time.perf_counter(), time.process_time())
                ),
            )
        finally:
            os.chdir(cwd)
    # stamps[k] is taken after step k+1; steps warmup+1 .. warmup+steps lie between stamps[warmup-1] and the last
    seconds = stamps[warmup + steps - 1][0] - stamps[warmup - 1][0]
    cpu = stamps[warmup + steps - 1][1] - stamps[warmup - 1][1]
    mods = algo.impl.modules
    return {
        "steps_per_second": steps / seconds,
        "seconds": seconds,
        "cpu_steps_per_second": steps / cpu,
        "parameters": {
            "actor": _count([mods.policy]),
            "q": _count([mods.q_funcs]),
            "v": _count([mods.value_func]),
            "q_target": _count([mods.targ_q_funcs]),
        },
    }


def ember_args(dataset: Path, out: Path, steps: int, batch_size: int, seed: int, ema: bool) -> list[str]:
    hidden = "[" + ",".join(str(h) for h in HIDDEN) + "]"
    return [
        f"--dataset={dataset}",
        f"--out={out}",
        f"--obs_keys=[{','.join(STATE_KEYS)}]",
        "--policy.type=bc",
        "--policy.loss=mse",
        f"--policy.hidden_dims={hidden}",
        "--policy.dropout=0.0",
        "--policy.n_obs_steps=1",
        "--policy.horizon=1",
        "--policy.n_action_steps=1",
        *([] if ema else ["--policy.ema.decay=0"]),
        "--algorithm=iql",
        f"--algorithm.hidden_dims={hidden}",
        f"--steps={steps}",
        f"--batch_size={batch_size}",
        "--num_threads=1",
        "--cpu=true",
        f"--log_every={max(1, steps)}",
        f"--seed={seed}",
        "--overwrite=true",
    ]


def time_ember(
    dataset: Path, steps: int, warmup: int, batch_size: int, seed: int, ema: bool
) -> dict[str, Any]:
    import torch

    from ember.algorithms import AlgorithmConfig, make_algorithm_config
    from ember.config import apply_overrides, register_choice_factory
    from ember.policies import make_policy_config
    from ember.policies.base import PolicyConfig
    from ember.policies.rl.iql import IQL
    from ember.train import TrainConfig, train

    register_choice_factory(
        PolicyConfig, make_policy_config
    )  # what `ember train` registers (--policy.type=...)
    register_choice_factory(AlgorithmConfig, make_algorithm_config)
    torch.set_num_threads(1)
    stamps: list[float] = []
    holder: dict[str, Any] = {}
    original = IQL.update

    def stamped(self: IQL, batch: Any, step: int) -> dict[str, float]:
        stamps.append((time.perf_counter(), time.process_time()))
        holder["algorithm"] = self
        return original(self, batch, step)

    IQL.update = stamped  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # one extra step: its stamp closes the last timed step (that step's update + the next batch's fetch)
            cfg = apply_overrides(
                TrainConfig(),
                ember_args(dataset, Path(tmp) / "run", warmup + steps + 1, batch_size, seed, ema),
            )
            result = train(cfg, quiet=True)
    finally:
        IQL.update = original  # type: ignore[method-assign]
    seconds = stamps[warmup + steps][0] - stamps[warmup][0]
    cpu = stamps[warmup + steps][1] - stamps[warmup][1]
    algo = holder["algorithm"]
    critics = algo.critics
    return {
        "steps_per_second": steps / seconds,
        "seconds": seconds,
        "cpu_steps_per_second": steps / cpu,
        "loop_steps_per_second": (warmup + steps + 1) / result.seconds,
        "parameters": {
            "actor": _count([algo.policy]),
            "q": _count([critics.q]),
            "v": _count([critics.v]),
            "q_target": _count([critics.q_target]),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="/tmp/orl/data/pp_mixed")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ember-ema", action="store_true", help="keep ember's default actor EMA (d3rlpy has none)"
    )
    parser.add_argument("--only", choices=("both", "ember", "d3rlpy"), default="both")
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "offline_rl_speed.json"))
    args = parser.parse_args()
    dataset = Path(args.dataset).resolve()
    if not (dataset / "meta" / "info.json").is_file():
        raise SystemExit(f"{dataset} is not a complete dataset (no meta/info.json)")

    import torch

    torch.set_num_threads(1)
    mdp = None
    if args.only != "ember":
        from ember.policies.rl.d3rlpy_export import to_mdp_dataset

        mdp = to_mdp_dataset(dataset, obs_keys=STATE_KEYS)
    trials: dict[str, list[dict[str, Any]]] = {"d3rlpy": [], "ember": []}
    loads = [os.getloadavg()[0]]
    for r in range(args.repeats):
        order = ["d3rlpy", "ember"] if r % 2 == 0 else ["ember", "d3rlpy"]
        for name in order:
            if args.only not in ("both", name):
                continue
            if name == "d3rlpy":
                trial = time_d3rlpy(mdp, args.steps, args.warmup, args.batch_size, args.seed)
            else:
                trial = time_ember(
                    dataset, args.steps, args.warmup, args.batch_size, args.seed, args.ember_ema
                )
            trial["load_average_1min"] = os.getloadavg()[0]
            loads.append(trial["load_average_1min"])
            trials[name].append(trial)
            print(
                f"  round {r + 1} {name:6s}: {trial['steps_per_second']:6.1f} steps/s wall, "
                f"{trial['cpu_steps_per_second']:6.1f} per CPU second (load {trial['load_average_1min']:.2f})",
                flush=True,
            )

    summary: dict[str, Any] = {}
    for name, rows in trials.items():
        if rows:
            rates = [t["steps_per_second"] for t in rows]
            cpu_rates = [t["cpu_steps_per_second"] for t in rows]
            summary[name] = {
                "median_steps_per_second": statistics.median(rates),
                "trials": rates,
                "median_steps_per_cpu_second": statistics.median(cpu_rates),
                "cpu_trials": cpu_rates,
                "parameters": rows[0]["parameters"],
            }
    ratio = cpu_ratio = None
    if len(summary) == 2:
        ratio = summary["ember"]["median_steps_per_second"] / summary["d3rlpy"]["median_steps_per_second"]
        cpu_ratio = (
            summary["ember"]["median_steps_per_cpu_second"] / summary["d3rlpy"]["median_steps_per_cpu_second"]
        )
    report = {
        "dataset": str(dataset),
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "hidden": list(HIDDEN),
        "torch_threads": 1,
        "ember_ema": args.ember_ema,
        "ratio_ember_over_d3rlpy": ratio,
        "cpu_time_ratio_ember_over_d3rlpy": cpu_ratio,
        "summary": summary,
        "trials": trials,
        "load_average_1min": {"min": min(loads), "max": max(loads)},
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"\nIQL gradient steps/s, batch {args.batch_size}, {HIDDEN[0]}x{HIDDEN[1]} MLPs, 1 torch thread, "
        f"{args.steps} steps after {args.warmup} warm-up, median of {args.repeats} "
        f"(load {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} CPUs)"
    )
    print(
        f"{'':8s} {'steps/s':>8s}  {'trials':24s} {'per CPU s':>9s} {'actor':>7s} {'Q':>7s} {'V':>7s} "
        f"{'Q target':>8s}"
    )
    for name, s in summary.items():
        p = s["parameters"]
        trials_text = ", ".join(f"{x:.1f}" for x in s["trials"])
        print(
            f"{name:8s} {s['median_steps_per_second']:8.1f}  {trials_text:24s} "
            f"{s['median_steps_per_cpu_second']:9.1f} {p['actor']:7d} {p['q']:7d} {p['v']:7d} {p['q_target']:8d}"
        )
    if ratio is not None:
        print(f"ratio ember / d3rlpy: {ratio:.2f}x wall clock, {cpu_ratio:.2f}x per CPU second")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
