"""d3rlpy 2.8.1's IQL on the same dataset and seeds as bench/offline_rl/run.py: its success beside ember's.

The dataset is exported with ``ember.policies.rl.d3rlpy_export.to_mdp_dataset`` (the same transitions, rewards and
terminals ember's IQL trains on; observations = ``observation.state`` + ``observation.environment_state``). d3rlpy
trains with its own IQL defaults except what makes the comparison like for like: 256x256 actor/critic/value MLPs,
batch 64 (``--batch-size``, the ember rows' batch), gamma 0.99, expectile 0.7, beta (``weight_temp``) 10 as ember's IQL rows, the same ``--steps``, and the observation and action
scalers a user would pick (standardization and min-max, as ember normalizes). One torch thread. The policy is
rolled out in ember's PickPlace env, episode i seeded ``eval_seed + i`` like ``ember eval`` (one env, serial; the
greedy action of d3rlpy's Gaussian actor), and the result is written into the same results.json as a row.

    .venv/bin/python bench/offline_rl/d3rlpy_row.py --work outputs/bench/offline_rl --dataset DATA [--steps 4000]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STATE_KEYS = ("observation.state", "observation.environment_state")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def train_d3rlpy(
    dataset: Path, steps: int, batch_size: int, reward_key: str, seed: int, beta: float
) -> tuple[Any, float]:
    import d3rlpy
    import torch

    from ember.policies.rl.d3rlpy_export import to_mdp_dataset

    torch.set_num_threads(1)
    d3rlpy.seed(seed)
    mdp = to_mdp_dataset(dataset, obs_keys=STATE_KEYS, reward_key=reward_key)
    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=[256, 256])
    algo = d3rlpy.algos.IQLConfig(
        batch_size=batch_size,
        gamma=0.99,
        expectile=0.7,
        weight_temp=beta,
        actor_encoder_factory=encoder,
        critic_encoder_factory=encoder,
        value_encoder_factory=encoder,
        observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
        action_scaler=d3rlpy.preprocessing.MinMaxActionScaler(),
    ).create(device="cpu:0")
    t0 = time.perf_counter()
    algo.fit(
        mdp,
        n_steps=steps,
        n_steps_per_epoch=steps,
        show_progress=False,
        save_interval=10**9,
        experiment_name="ember_bench_offline_rl",
        with_timestamp=False,
    )
    return algo, time.perf_counter() - t0


def evaluate(algo: Any, episodes: int, eval_seed: int) -> dict[str, Any]:
    from ember.sims import make_env

    env = make_env("PickPlace", split="train")
    successes, t0 = 0, time.perf_counter()
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=eval_seed + i)
            success = False
            while True:
                x = np.concatenate([np.asarray(obs[k], np.float32).reshape(-1) for k in STATE_KEYS])[None]
                obs, _, terminated, truncated, info = env.step(algo.predict(x)[0])
                success = success or bool(info.get("is_success", False))
                if terminated or truncated:
                    break
            successes += int(success)
    finally:
        env.close()
    return {
        "success_rate": successes / episodes,
        "ci95": list(wilson(successes, episodes)),
        "episodes": episodes,
        "eval_seconds": time.perf_counter() - t0,
    }


def main() -> None:
    from bench.results import save_row

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=str(ROOT / "outputs" / "bench" / "offline_rl"))
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--eval-seed", type=int, default=1_000_000)
    parser.add_argument("--reward", default="next.reward")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--beta", type=float, default=10.0, help="advantage temperature (d3rlpy weight_temp), as ember's rows"
    )
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    os.chdir(Path(args.work).resolve())  # d3rlpy writes its logs under ./d3rlpy_logs
    algo, seconds = train_d3rlpy(
        Path(args.dataset).resolve(), args.steps, args.batch_size, args.reward, args.seed, args.beta
    )
    print(
        f"d3rlpy IQL: {args.steps} steps in {seconds:.0f} s ({args.steps / seconds:.1f} steps/s); evaluating",
        flush=True,
    )
    result = evaluate(algo, args.episodes, args.eval_seed)
    save_row(
        Path(args.work) / "results.json",
        "d3rlpy_iql" + ("" if args.reward == "next.reward" else "@" + args.reward),
        {
            "train_seconds": seconds,
            "steps": args.steps,
            "final_loss": None,
            "reward": args.reward,
            "label": "d3rlpy 2.8.1 IQL (Gaussian MLP actor)",
            "dataset": args.dataset,
            "eval": result,
        },
    )
    print(
        f"d3rlpy IQL: {100 * result['success_rate']:.0f}% ({100 * result['ci95'][0]:.0f}-"
        f"{100 * result['ci95'][1]:.0f})"
    )


if __name__ == "__main__":
    main()
