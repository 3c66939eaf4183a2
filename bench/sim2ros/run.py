"""A sim-trained checkpoint scored twice on the same seeds: in-process (``ember eval``) and through ROS 2
(policy node -> bridge -> mock arm hosting the task, real DDS; ``real/ros_eval.py``).

The checkpoint must read what an arm gives (joints + cameras): train it on ``ember collect --observations=robot
--obs_mode=pixels``. Prints per-episode agreement and both success rates with Wilson 95% intervals; writes JSON.

    .venv/bin/python bench/sim2ros/run.py --checkpoint outputs/train/<run> --task PickPlace --episodes 50
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--task", default="PickPlace")
    parser.add_argument("--split", default="train")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=100_000)
    parser.add_argument("--max-episode-steps", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "sim2ros"))
    args = parser.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from ember.eval import EvalConfig, run_eval
    from ember.eval.metrics import wilson_interval
    from ember.real.ros_eval import RosEvalConfig, control_loop_summary, run_ros_eval, to_json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sim_result, _ = run_eval(
        EvalConfig(
            policy_path=args.checkpoint,
            task=args.task,
            split=args.split,
            num_episodes=args.episodes,
            seed=args.seed,
            num_videos=0,
            max_episode_steps=args.max_episode_steps,
            out=str(out / "eval"),
            overwrite=True,
        ),
        quiet=True,
    )
    ros_cfg = RosEvalConfig(
        checkpoint=args.checkpoint,
        task=args.task,
        split=args.split,
        num_episodes=args.episodes,
        seed=args.seed,
        max_episode_steps=args.max_episode_steps,
        out_dir=str(out / "ros"),
    )
    ros_episodes = run_ros_eval(ros_cfg)
    sim_success = {e.seed: e.success for e in sim_result.episodes}
    agree = sum(sim_success.get(e.seed) == e.success for e in ros_episodes)
    n = len(ros_episodes)
    ros_rate = sum(e.success for e in ros_episodes) / n
    report = {
        "task": args.task,
        "split": args.split,
        "episodes": n,
        "checkpoint": args.checkpoint,
        "in_process": {"success_rate": sim_result.success_rate, "ci95": list(sim_result.success_ci95)},
        "ros2": {
            "success_rate": ros_rate,
            "ci95": list(wilson_interval(sum(e.success for e in ros_episodes), n)),
            **to_json(ros_cfg, ros_episodes),
        },
        "per_episode_agreement": agree / n,
        "control_loop": control_loop_summary(ros_cfg.out_dir),
    }
    (out / "sim2ros.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\n{args.task} ({args.split}), {n} seeds from {args.seed}")
    print(f"{'path':<28}{'success':>9}{'95% CI':>16}")
    lo, hi = sim_result.success_ci95
    print(f"{'in-process (ember eval)':<28}{sim_result.success_rate:>9.0%}{f'{lo:.0%}-{hi:.0%}':>16}")
    lo, hi = report["ros2"]["ci95"]
    print(f"{'ROS 2 (node/bridge/mock)':<28}{ros_rate:>9.0%}{f'{lo:.0%}-{hi:.0%}':>16}")
    loop = report["control_loop"]
    inf, o2c = loop["inference_ms"], loop["obs_to_command_ms"]
    print(
        f"control loop: inference p50 {inf.get('p50', 0):.1f} ms / p99 {inf.get('p99', 0):.1f} ms "
        f"({inf.get('n', 0)} chunks); observation -> command p50 {o2c.get('p50', 0):.1f} ms / "
        f"p99 {o2c.get('p99', 0):.1f} ms; {loop['actions']} actions, {loop['commands']} commands; "
        f"rejected {loop['rejected'] or 'none'}; clamped {loop['clamped'] or 'none'}"
    )
    print(f"same outcome on {agree}/{n} seeds; wrote {out / 'sim2ros.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
