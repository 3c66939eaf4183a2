"""Can a conditioning encoder read *which* cube and *which* pad a goal sketch asks for, on episodes it never saw?

A minutes-long diagnostic for goal-sketch conditioning, run before spending an hour on policy training: the
policy's own late-fusion encoder (``ConditioningImageEncoder``: small CNN + spatial softmax) is trained with
plain supervision to regress the hidden goal (the target cube's and pad's x-y at the first frame) from the goal
sketch, alone or stacked with the episode's first frame, on 80% of a PickPlace dataset's episodes; reported on
the other 20%: median position error and how often the nearest cube / pad to the prediction is the right one
(chance: one in ``num_objects``). Sketches are made by ``ember.conditioning.episodes.produce`` (training
variants with stroke augmentation, held-out ones plain), exactly as ``ember train`` makes them.

    .venv/bin/python bench/learn/probe_goal.py                       # every input variant, table + JSON
    .venv/bin/python bench/learn/probe_goal.py --inputs goal_sketch,initial_image --pool 1

It explains the goal-sketch rows of RESULTS.md: the sketch alone names the pad but not the cube (the moved cube
is under the gripper in the last frame and an edge map has no colours), the sketch beside the first frame names
both, so the encoder can generalize; a policy whose encoder also learns from the action loss does not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CAMERA = "observation.images.front"
ENV_STATE = "observation.environment_state"
TARGETS = ("goal_object.x", "goal_object.y", "goal_pad.x", "goal_pad.y")
VARIANTS = (("goal_sketch",), ("goal_sketch", "initial_image"))


def load_episodes(root: Path) -> dict[str, np.ndarray]:
    """First and last frames, and the environment state at the first frame, of every episode."""
    from ember.data.dataset import EmberDataset

    ds = EmberDataset(root)
    names = list(ds.features[ENV_STATE]["names"])
    missing = [n for n in TARGETS if n not in names]
    if missing:
        raise SystemExit(
            f"{root} has no {missing} in {ENV_STATE}; record a PickPlace dataset (ember collect)"
        )
    table = ds.frame_table()
    episode = np.asarray(table.column("episode_index").to_pylist())
    state = np.asarray(table.column(ENV_STATE).to_pylist(), dtype=np.float32)
    frames = [ds.decode_video(CAMERA, i) for i in range(ds.num_episodes)]
    first_rows = np.asarray([np.flatnonzero(episode == i)[0] for i in range(ds.num_episodes)])
    return {
        "frames": np.stack([np.stack([f[0], f[-1]]) for f in frames]),
        "state": state[first_rows],
        "names": np.asarray(names),
    }


def make_inputs(frames: np.ndarray, kinds: tuple[str, ...], rng: np.random.Generator | None) -> np.ndarray:
    """(C, H, W) float32 in [0, 1]: the conditioning images ``produce`` makes from (first, last) frames."""
    from ember.conditioning.episodes import EpisodeRecord, produce
    from ember.transforms import to_float_chw

    values = produce(EpisodeRecord(frames=frames), kinds, rng)
    return to_float_chw(np.concatenate([values[k] for k in kinds], axis=-1))


def probe(
    data: dict[str, np.ndarray],
    kinds: tuple[str, ...],
    steps: int,
    pool: int,
    width: int,
    variants: int,
    seed: int,
) -> dict[str, float]:
    import torch
    from torch import nn

    from ember.policies.conditioning.encoders import ConditioningImageEncoder

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    names = list(data["names"])
    state = data["state"]
    n = len(state)
    n_train = int(0.8 * n)
    y = state[:, [names.index(t) for t in TARGETS]]
    mean, std = y[:n_train].mean(0), y[:n_train].std(0) + 1e-6
    n_obj = sum(1 for name in names if name.startswith("goal_is_object_"))
    objects = np.stack(
        [state[:, [names.index(f"object_{k}.x"), names.index(f"object_{k}.y")]] for k in range(n_obj)], 1
    )
    pads = np.stack(
        [state[:, [names.index(f"pad_{k}.x"), names.index(f"pad_{k}.y")]] for k in range(n_obj)], 1
    )
    train_x = np.stack(
        [[make_inputs(data["frames"][i], kinds, rng) for _ in range(variants)] for i in range(n_train)]
    )
    test_x = np.stack([make_inputs(data["frames"][i], kinds, None) for i in range(n_train, n)])
    h, w = train_x.shape[-2:]
    encoder = ConditioningImageEncoder(train_x.shape[2], (h, w), 64, width, pool)
    model = nn.Sequential(encoder, nn.Mish(), nn.Linear(64, len(TARGETS)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    target = torch.as_tensor((y - mean) / std)
    t0 = time.perf_counter()
    for _ in range(steps):
        b, v = rng.integers(0, n_train, 64), rng.integers(0, variants, 64)
        loss = nn.functional.mse_loss(model(torch.as_tensor(train_x[b, v])), target[b])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_seconds = time.perf_counter() - t0

    def score(x: np.ndarray, rows: np.ndarray) -> dict[str, float]:
        with torch.no_grad():
            pred = model(torch.as_tensor(x)).numpy() * std + mean
        right_obj = np.argmin(np.linalg.norm(objects[rows] - y[rows, None, :2], axis=-1), 1)
        right_pad = np.argmin(np.linalg.norm(pads[rows] - y[rows, None, 2:], axis=-1), 1)
        return {
            "object_error_cm": float(100 * np.median(np.linalg.norm(pred[:, :2] - y[rows, :2], axis=1))),
            "pad_error_cm": float(100 * np.median(np.linalg.norm(pred[:, 2:] - y[rows, 2:], axis=1))),
            "object_accuracy": float(
                np.mean(np.argmin(np.linalg.norm(objects[rows] - pred[:, None, :2], axis=-1), 1) == right_obj)
            ),
            "pad_accuracy": float(
                np.mean(np.argmin(np.linalg.norm(pads[rows] - pred[:, None, 2:], axis=-1), 1) == right_pad)
            ),
        }

    train_rows = np.arange(min(40, n_train))
    return {
        "inputs": "+".join(kinds),
        "train_episodes": n_train,
        "heldout_episodes": n - n_train,
        "steps": steps,
        "pool": pool,
        "width": width,
        "train_seconds": train_seconds,
        "chance": 1.0 / n_obj,
        "train": score(train_x[train_rows, 0], train_rows),
        "heldout": score(test_x, np.arange(n_train, n)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset",
        default=str(ROOT / "bench/results/learn/data/pickplace"),
        help="a PickPlace dataset with the front camera (bench/learn/run.py collects one)",
    )
    parser.add_argument(
        "--inputs", default="", help="comma-separated conditioning kinds; default: every variant"
    )
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--pool", type=int, default=2)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--variants", type=int, default=12, help="augmented sketches per training episode")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench/results/probe_goal.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    root = Path(args.dataset)
    if not (root / "meta" / "info.json").is_file():
        raise SystemExit(
            f"no dataset at {root}; run bench/learn/run.py --only pickplace/flow first, or pass --dataset"
        )
    data = load_episodes(root)
    variants = [tuple(args.inputs.split(","))] if args.inputs else list(VARIANTS)
    rows = [
        probe(data, kinds, args.steps, args.pool, args.width, args.variants, args.seed) for kinds in variants
    ]
    print("| inputs | train s | held-out cube named | held-out pad named | cube error | pad error | chance |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        h = r["heldout"]
        print(
            f"| {r['inputs']} (pool {r['pool']}) | {r['train_seconds']:.0f} | {100 * h['object_accuracy']:.0f}% | "
            f"{100 * h['pad_accuracy']:.0f}% | {h['object_error_cm']:.1f} cm | {h['pad_error_cm']:.1f} cm | "
            f"{100 * r['chance']:.0f}% |"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"dataset": str(root), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
