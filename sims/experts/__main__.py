"""Run a scripted expert over seeds and print its success rate and speed: ``python -m sims.experts``."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def evaluate_expert(
    task: str = "PushT", seeds: range = range(50), verbose: bool = False, **env_kwargs
) -> dict[str, float]:
    """Success rate, mean episode length, final coverage (PushT) or goal error, and env steps/s of the task's
    expert over ``seeds`` (``env_kwargs`` may pick ``backend``, ``split``, ``robot``, ...)."""
    from ember.sims import make_env
    from ember.sims.experts import make_expert

    env = make_env(task, render_mode=None, **env_kwargs)
    expert = make_expert(task, env)
    metric = "coverage" if task.lower() == "pusht" else "goal_error"
    successes, lengths, final_metric, steps, sim_time = 0, [], [], 0, 0.0
    failed: list[int] = []
    t0 = time.perf_counter()
    try:
        for seed in seeds:
            env.reset(seed=seed)
            expert.reset()
            done, n, info = False, 0, {}
            while not done:
                action = expert.act(env)
                t = time.perf_counter()
                _, _, terminated, truncated, info = env.step(action)
                sim_time += time.perf_counter() - t
                n += 1
                done = terminated or truncated
            ok = bool(info["is_success"])
            successes += ok
            lengths.append(n)
            final_metric.append(info.get("coverage", info.get("goal_error", float("nan"))))
            steps += n
            if not ok:
                failed.append(seed)
            if verbose:
                print(
                    f"seed {seed:4d}: {'ok  ' if ok else 'FAIL'} steps {n:3d} {metric} {final_metric[-1]:.3f}"
                )
    finally:
        env.close()
    wall = time.perf_counter() - t0
    result = {
        "episodes": len(lengths),
        "success_rate": successes / max(1, len(lengths)),
        "mean_length": float(np.mean(lengths)),
        f"mean_final_{metric}": float(np.mean(final_metric)),
        "env_steps_per_s": steps / max(sim_time, 1e-9),
        "total_steps_per_s": steps / max(wall, 1e-9),
    }
    if failed:
        result["failed_seeds"] = failed  # type: ignore[assignment]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="PushT")
    parser.add_argument("--backend", default="mujoco")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--obs-mode", default="state", choices=("state", "pixels"))
    parser.add_argument("--max-episode-steps", type=int, default=0, help="0 = the task's default")
    parser.add_argument("--action-space-type", default="", help="empty = the task's default")
    parser.add_argument("--split", default="train")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    kwargs = {"obs_mode": args.obs_mode, "split": args.split, "backend": args.backend}
    if args.action_space_type:
        kwargs["action_space_type"] = args.action_space_type
    if args.max_episode_steps > 0:
        kwargs["max_episode_steps"] = args.max_episode_steps
    result = evaluate_expert(args.task, range(args.seed, args.seed + args.episodes), args.verbose, **kwargs)
    for key, value in result.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
