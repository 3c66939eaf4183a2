"""Benchmark ember's data path on a 50-episode 96x96 dataset.

Measures (CPU only, deterministic data):

- writing the dataset (frames/s through ``DatasetWriter``, H.264 encode included);
- the training loader (``WindowDataset``, n_obs_steps=2, horizon=16, one 96x96 camera + state):
  per-sample video decode (``cache=False``, what LeRobot does), the first cached epoch (decodes each
  episode once into the memmap), later cached epochs (float32 and uint8 images), and the same through
  ``torch.utils.data.DataLoader`` (batch 64, shuffled) with 0 and 2 workers;
- importers: a robomimic HDF5 and a rosbag2 (both synthetic, made here).

Prints a table and writes ``bench/results/data-<timestamp>.json``. Run: ``python -m bench.data``
(``--episodes``/``--length`` shrink it for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ember.data import DatasetWriter, EmberDataset, WindowDataset

CAM = "observation.images.top"


def make_dataset(root: Path, episodes: int, length: int, size: int) -> float:
    rng = np.random.default_rng(0)
    feats = {
        "observation.state": {"dtype": "float32", "shape": [10], "names": None},
        "action": {"dtype": "float32", "shape": [7], "names": None},
        CAM: {"dtype": "video", "shape": [size, size, 3], "names": None},
    }
    y, x = np.mgrid[0:size, 0:size]
    t0 = time.perf_counter()
    with DatasetWriter.create(root, fps=10, features=feats) as w:
        for _ in range(episodes):
            cx, cy = rng.uniform(20, size - 20, 2)
            for t in range(length):
                img = np.empty((size, size, 3), np.uint8)  # a moving disc on a gradient: codec-realistic
                disc = (x - cx - t * 0.3) ** 2 + (y - cy) ** 2 < 100
                img[..., 0] = np.where(disc, 230, x * 2)
                img[..., 1] = np.where(disc, 40, y * 2)
                img[..., 2] = 90
                w.add_frame({"observation.state": rng.standard_normal(10), "action": rng.standard_normal(7),
                             CAM: img, "task": "push the disc"})  # fmt: skip
            w.save_episode()
    return episodes * length / (time.perf_counter() - t0)


def samples_per_s(wd: WindowDataset, n: int, seed: int = 0) -> float:
    order = np.random.default_rng(seed).permutation(len(wd))[:n]
    t0 = time.perf_counter()
    for i in order:
        wd[int(i)]
    return n / (time.perf_counter() - t0)


def loader_per_s(wd: WindowDataset, workers: int, batches: int) -> float:
    g = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(wd, batch_size=64, shuffle=True, num_workers=workers, generator=g,
                                         persistent_workers=workers > 0)  # fmt: skip

    def forever(dl: torch.utils.data.DataLoader):
        while True:
            yield from dl

    it = forever(loader)
    next(it)  # worker start-up is not throughput
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += len(next(it)["action"])
    rate = n / (time.perf_counter() - t0)
    it.close()  # shuts persistent workers down before the next measurement
    return rate


def bench_importers(tmp: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        import h5py

        from ember.data.importers import import_robomimic

        rng = np.random.default_rng(1)
        path = tmp / "robomimic.hdf5"
        with h5py.File(path, "w") as f:
            data = f.create_group("data")
            data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {"control_freq": 20}})
            for i in range(10):
                g = data.create_group(f"demo_{i}")
                g["actions"] = rng.uniform(-1, 1, (100, 7))
                g["rewards"], g["dones"] = np.zeros(100), np.zeros(100, np.int64)
                g["states"] = rng.standard_normal((100, 45))
                g["obs/robot0_eef_pos"] = rng.standard_normal((100, 3))
                g["obs/agentview_image"] = rng.integers(0, 255, (100, 84, 84, 3), dtype=np.uint8)
        out["import_robomimic_frames_per_s"] = import_robomimic(path, tmp / "rm").frames_per_second
    except ImportError:
        pass
    try:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from ember.data.importers import import_rosbag2
        from tests.test_data_import import MAPPING, write_bag

        for k in range(3):
            write_bag(tmp / "bags" / f"run_{k}", seconds=10.0, offset=100.0 * k)
        (tmp / "mapping.yaml").write_text(MAPPING)
        out["import_rosbag2_frames_per_s"] = import_rosbag2(
            tmp / "bags", tmp / "rb", tmp / "mapping.yaml"
        ).frames_per_second
    except ImportError:
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument(
        "--samples", type=int, default=400, help="random samples per single-process measurement"
    )
    parser.add_argument("--batches", type=int, default=30, help="DataLoader batches (of 64) per measurement")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads in the main process (DataLoader workers use 1 each)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)  # on 2 shared cores, >1 made default_collate ~100x slower here
    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-data-"))
    results: dict[str, float | int | str] = {
        "episodes": args.episodes, "length": args.length, "size": args.size, "n_obs_steps": 2, "horizon": 16,
        "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    try:
        root = tmp / "ds"
        results["write_frames_per_s"] = make_dataset(root, args.episodes, args.length, args.size)
        ds = EmberDataset(root)
        keys = ["observation.state", CAM]
        cache = tmp / "cache"
        live = WindowDataset(ds, 2, 16, keys, cache=False)
        results["uncached_samples_per_s"] = samples_per_s(live, min(args.samples, 200))
        cold = WindowDataset(ds, 2, 16, keys, cache_dir=cache)
        t0 = time.perf_counter()
        cold.warm_cache()
        results["cache_build_s"] = time.perf_counter() - t0
        results["cache_build_frames_per_s"] = ds.num_frames / results["cache_build_s"]
        warm = WindowDataset(ds, 2, 16, keys, cache_dir=cache)
        results["cached_samples_per_s"] = samples_per_s(warm, args.samples)
        warm8 = WindowDataset(ds, 2, 16, keys, cache_dir=cache, image_dtype="uint8")
        results["cached_uint8_samples_per_s"] = samples_per_s(warm8, args.samples)
        for workers in (0, 2):
            results[f"loader_uncached_w{workers}_samples_per_s"] = loader_per_s(
                live, workers, max(args.batches // 5, 3)
            )
            results[f"loader_cached_w{workers}_samples_per_s"] = loader_per_s(warm, workers, args.batches)
            results[f"loader_cached_uint8_w{workers}_samples_per_s"] = loader_per_s(
                warm8, workers, args.batches
            )
        results.update(bench_importers(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [(k, v) for k, v in results.items() if isinstance(v, float)]
    print(f"\nember data bench: {args.episodes} episodes x {args.length} frames, {args.size}x{args.size} video, "
          "n_obs_steps=2 (2 image frames per sample), horizon=16")  # fmt: skip
    print(f"{'measurement':<44} {'value':>12}")
    for key, value in rows:
        print(f"{key:<44} {value:>12.1f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"data-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
