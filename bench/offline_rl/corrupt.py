"""A corrupted copy of an ember dataset, for the RIQL-vs-IQL robustness rows of bench/offline_rl.

RIQL's benchmark (Yang et al., 2023) corrupts a fraction of an offline dataset's transitions at random; here each
chosen frame gets one of three corruptions, drawn uniformly (``--scale`` = 1 is the paper's "random" setting):

    state   observation.state and observation.environment_state  += scale * std * N(0, 1)   (per dimension)
    action  action += scale * std * N(0, 1), clipped to the recorded [min, max]
    reward  the reward column := U(-scale, scale) * max(1, max |reward|)

std/min/max are the clean dataset's. The copy keeps the videos (hard links), rewrites the data parquet files with
the same schema, recomputes ``meta/stats.json`` for the corrupted columns (so normalization sees the corrupted data,
as a user's pipeline would) and writes ``meta/corruption.json`` (the seed, the fraction and every corrupted frame's
index and kind), so the corruption is reproducible and auditable. The clean dataset is never touched.

    .venv/bin/python bench/offline_rl/corrupt.py SRC DST [--fraction 0.3] [--scale 1.0] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

STATE_KEYS = ("observation.state", "observation.environment_state")
KINDS = ("state", "action", "reward")


def corrupt_dataset(
    src: str | Path,
    dst: str | Path,
    fraction: float = 0.3,
    scale: float = 1.0,
    seed: int = 0,
    reward_key: str = "next.reward",
) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ember.data import EmberDataset, columns
    from ember.data.stats import numeric_stats, stats_to_json

    src, dst = Path(src), Path(dst)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if dst.exists():
        raise FileExistsError(f"{dst} exists; remove it or pick another destination")
    clean = EmberDataset(src)
    feats = clean.features
    stats = json.loads((src / "meta" / "stats.json").read_text())
    for key in (*STATE_KEYS, "action", reward_key):
        if key not in feats:
            raise KeyError(f"{src} has no {key!r} column")
    shutil.copytree(
        src, dst, copy_function=os.link
    )  # hard links; every file rewritten below is replaced, not edited
    rng = np.random.default_rng(seed)
    record: dict[str, list[int]] = {k: [] for k in KINDS}
    changed: dict[str, list[np.ndarray]] = {k: [] for k in (*STATE_KEYS, "action", reward_key)}
    reward_bound = max(1.0, float(np.max(np.abs([stats[reward_key]["min"], stats[reward_key]["max"]]))))
    for path in sorted((dst / "data").rglob("*.parquet")):
        table = pq.read_table(path)
        n = table.num_rows
        index = table.column("index").to_numpy()
        chosen = rng.random(n) < fraction
        kind = rng.integers(0, len(KINDS), n)
        arrays = {
            k: np.array(columns.to_numpy(table.column(k), feats[k]), dtype=np.float32).reshape(n, -1)
            for k in changed
        }
        for k in STATE_KEYS:
            rows = chosen & (kind == 0)
            std = np.asarray(stats[k]["std"], np.float32).reshape(-1)
            arrays[k][rows] += (
                scale * std * rng.standard_normal((int(rows.sum()), arrays[k].shape[1]), np.float32)
            )
        rows = chosen & (kind == 1)
        a_std = np.asarray(stats["action"]["std"], np.float32).reshape(-1)
        noisy = arrays["action"][rows] + scale * a_std * rng.standard_normal(
            (int(rows.sum()), arrays["action"].shape[1]), np.float32
        )
        arrays["action"][rows] = np.clip(
            noisy,
            np.asarray(stats["action"]["min"], np.float32).reshape(-1),
            np.asarray(stats["action"]["max"], np.float32).reshape(-1),
        )
        rows = chosen & (kind == 2)
        arrays[reward_key][rows, 0] = rng.uniform(-scale, scale, int(rows.sum())) * reward_bound
        for i, name in enumerate(KINDS):
            record[name].extend(int(x) for x in index[chosen & (kind == i)])
        for k, arr in arrays.items():
            col = columns.to_arrow(arr.reshape(n, *feats[k]["shape"]), feats[k])
            table = table.set_column(
                table.schema.get_field_index(k), table.schema.field(k), pa.chunked_array([col])
            )
            changed[k].append(arr)
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)  # breaks the hard link: the clean file keeps its bytes
    for k, parts in changed.items():
        stats[k] = stats_to_json({k: numeric_stats(np.concatenate(parts))})[k]
    stats_path = dst / "meta" / "stats.json"
    tmp = stats_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats, indent=2))
    os.replace(tmp, stats_path)
    summary = {
        "source": str(src),
        "fraction": fraction,
        "scale": scale,
        "seed": seed,
        "reward_key": reward_key,
        "frames": int(clean.num_frames),
        "corrupted": {k: len(v) for k, v in record.items()},
        "indices": record,
    }
    (dst / "meta" / "corruption.json").write_text(json.dumps(summary))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reward-key", default="next.reward")
    args = parser.parse_args()
    summary = corrupt_dataset(args.src, args.dst, args.fraction, args.scale, args.seed, args.reward_key)
    print(
        f"corrupted {sum(summary['corrupted'].values())} of {summary['frames']} frames "
        f"({summary['corrupted']}) -> {args.dst}"
    )


if __name__ == "__main__":
    main()
