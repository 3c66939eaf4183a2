"""Which change of the ``heldout_scene`` split hurts a PickPlace policy: each factor alone, 50 episodes each.

``heldout_scene`` changes three things at once (table texture, lighting, distractor objects); this evaluates a
checkpoint with one of them at a time (same seeds as the split, through the envs' ``heldout_scene_factors``
option), so a drop names its cause. The same from the command line::

    ember eval --policy_path=<run>/train --task=PickPlace --splits=heldout_scene \
        --env_kwargs='{"heldout_scene_factors": ["table_texture"]}'

    .venv/bin/python bench/learn/scene_factors.py <run>/train [--episodes 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FACTORS = {
    "checker_table": ("table_texture",),
    "dim_side_light": ("lighting",),
    "3_distractors": ("distractors",),
}
"""Row name -> the ``heldout_scene`` changes it applies (``ember.sims.splits.SCENE_FACTORS``)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--task", default="PickPlace")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "bench/results/scene_factors.json"))
    args = parser.parse_args()
    import torch

    from ember.eval import EvalConfig, run_eval

    torch.set_num_threads(1)
    results = {}
    for name, factors in FACTORS.items():
        cfg = EvalConfig(
            policy_path=args.checkpoint,
            task=args.task,
            splits=("heldout_scene",),
            num_episodes=args.episodes,
            batch_size=10,
            num_videos=0,
            env_kwargs={"heldout_scene_factors": list(factors)},
            out=str(Path(args.out).with_suffix("") / name),
            overwrite=True,
        )
        result, _ = run_eval(cfg, quiet=True)
        results[name] = {"success_rate": result.success_rate, "ci95": list(result.success_ci95)}
        lo, hi = result.success_ci95
        print(f"{name:16s} {result.success_rate:5.0%} ({lo:.0%}-{hi:.0%})", flush=True)
    Path(args.out).write_text(
        json.dumps({"checkpoint": args.checkpoint, "episodes": args.episodes, "factors": results}, indent=1)
    )


if __name__ == "__main__":
    main()
