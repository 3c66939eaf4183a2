"""ember vs LeRobot 0.4.4 on the same datasets: camera loader samples/s and diffusion training samples/s.

Two datasets are written once by ember (LeRobot v3 layout, which LeRobot 0.4.4 reads as is):

- camera: 50 episodes x 100 frames, one 96x96 H.264 camera (GOP 2) + 10-D state + 7-D action (bench/data's);
- state: PushT expert demonstrations from ``ember collect`` (``observation.state``,
  ``observation.environment_state`` and 2-D actions; shapes read from the dataset's info.json).

Each side reads them with its own loader, windows of 2 observation steps and 16 actions:

- ``camera random``: ``dataset[i]`` at random i (one sample, frames decoded per sample);
- ``camera loader``: ``DataLoader(batch_size=64, shuffle=True, num_workers=0)``; ember with its defaults (the
  decoded-frame cache ``ember train`` uses, float32) and uncached; LeRobot with torchcodec (its default backend;
  its ``pyav`` path needs ``torchvision.io.VideoReader``, which torchvision 0.28 no longer has);
- ``train``: samples/s of the whole training loop on the state data: the DataLoader as above, then forward +
  backward + ``clip_grad_norm_(10)`` + Adam on the Diffusion Policy of bench/compare/model.py (UNet 64-128-256,
  LeRobot's depth), median over 20 steps after 3 warm-up steps.

Sides alternate for ``--rounds`` rounds, each in its own process and venv, one torch thread; the table gives
medians and ember / LeRobot ratios (samples/s: higher is better).

    .venv/bin/python bench/compare/data.py --peer-python ../peer-lerobot/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rounds import check_peer, run_rounds, summarize, torch_adam, train_step, write_json

ROOT = Path(__file__).resolve().parents[2]
CAM = "observation.images.top"
STATE, ENV, ACTION = "observation.state", "observation.environment_state", "action"
N_OBS, HORIZON, BATCH = 2, 16, 64


def make_datasets(tmp: Path, episodes: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    from bench.data.__main__ import make_dataset
    from ember.collect import CollectConfig, collect

    camera, state = tmp / "camera", tmp / "state"
    make_dataset(camera, episodes, 100, 96)
    collect(CollectConfig(task="PushT", num_episodes=episodes // 2, seed=0, out=str(state)), quiet=True)
    return camera, state


def _shapes(root: Path) -> dict[str, int]:
    features = json.loads((root / "meta/info.json").read_text())["features"]
    return {k: int(features[k]["shape"][0]) for k in (STATE, ENV, ACTION)}


def _random_samples(torch, ds, n: int) -> float:
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n].tolist()
    ds[order[0]]  # first touch opens files: not throughput
    t = time.perf_counter()
    for i in order:
        ds[i]
    return n / (time.perf_counter() - t)


def _loader_samples(torch, loader, batches: int) -> float:
    it = iter(loader)
    next(it)
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += len(next(it)[ACTION])
    return n / (time.perf_counter() - t)


def _train_samples(torch, model, loader, loss_of, steps: int) -> float:
    opt = torch_adam(torch, model.parameters())
    times = []
    it = iter(loader)
    for i in range(steps + 3):
        t = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        train_step(torch, model, loss_of(batch), opt)
        if i >= 3:
            times.append(time.perf_counter() - t)
    return BATCH / statistics.median(times)


def _loader(torch, ds, **kw):
    return torch.utils.data.DataLoader(
        ds,
        batch_size=BATCH,
        shuffle=True,
        num_workers=0,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
        **kw,
    )


def ember_side(camera: Path, state: Path, args) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from ember.data import EmberDataset, WindowDataset
    from ember.data.windows import collate_windows
    from ember.policies import make_policy, make_policy_config

    torch.set_num_threads(1)
    torch.manual_seed(0)
    out = {}
    cam_ds = EmberDataset(camera)
    with tempfile.TemporaryDirectory() as cache:
        cached = WindowDataset(cam_ds, N_OBS, HORIZON, [STATE, CAM], cache_dir=cache)
        t = time.perf_counter()
        cached.warm_cache()
        out["camera cache build s"] = time.perf_counter() - t
        uncached = WindowDataset(cam_ds, N_OBS, HORIZON, [STATE, CAM], cache=False)
        out["camera random uncached"] = _random_samples(torch, uncached, args.samples)
        out["camera random"] = _random_samples(torch, cached, args.samples * 5)
        out["camera loader uncached"] = _loader_samples(
            torch, _loader(torch, uncached, collate_fn=collate_windows), max(2, args.batches // 5)
        )
        out["camera loader"] = _loader_samples(
            torch, _loader(torch, cached, collate_fn=collate_windows), args.batches
        )

    st_ds = EmberDataset(state)
    windows = WindowDataset(st_ds, N_OBS, HORIZON, [STATE, ENV])
    dims = _shapes(state)
    cfg = make_policy_config(
        "diffusion",
        input_features={STATE: {"shape": [dims[STATE]]}, ENV: {"shape": [dims[ENV]]}},
        output_features={ACTION: {"shape": [dims[ACTION]]}},
        n_obs_steps=N_OBS,
        horizon=HORIZON,
        n_action_steps=8,
        denoiser={
            "down_dims": [64, 128, 256],
            "kernel_size": 5,
            "n_groups": 8,
            "diffusion_step_embed_dim": 128,
            "res_blocks_per_level": 2,
        },
    )
    policy = make_policy(cfg, dataset_stats=st_ds.meta.stats).train()
    out["train"] = _train_samples(
        torch,
        policy,
        _loader(torch, windows, collate_fn=collate_windows),
        lambda b: policy(b)["loss"],
        args.steps,
    )
    return out


def lerobot_side(camera: Path, state: Path, args) -> dict:
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    torch.set_num_threads(1)
    torch.manual_seed(0)
    obs_t = [i / 10 for i in range(1 - N_OBS, 1)]
    act_t = [i / 10 for i in range(1 - N_OBS, 1 - N_OBS + HORIZON)]
    out = {}
    cam_ds = LeRobotDataset(
        "local/camera",
        root=camera,
        video_backend="torchcodec",
        delta_timestamps={CAM: obs_t, STATE: obs_t, ACTION: act_t},
    )
    out["camera random"] = _random_samples(torch, cam_ds, args.samples)
    out["camera loader"] = _loader_samples(torch, _loader(torch, cam_ds), max(2, args.batches // 5))

    fps = json.loads((state / "meta/info.json").read_text())["fps"]
    obs_t = [i / fps for i in range(1 - N_OBS, 1)]
    act_t = [i / fps for i in range(1 - N_OBS, 1 - N_OBS + HORIZON)]
    dims = _shapes(state)
    st_ds = LeRobotDataset(
        "local/state", root=state, delta_timestamps={STATE: obs_t, ENV: obs_t, ACTION: act_t}
    )
    cfg = DiffusionConfig(
        n_obs_steps=N_OBS,
        horizon=HORIZON,
        n_action_steps=8,
        down_dims=(64, 128, 256),
        kernel_size=5,
        n_groups=8,
        diffusion_step_embed_dim=128,
        use_film_scale_modulation=True,
        device="cpu",
        input_features={
            STATE: PolicyFeature(type=FeatureType.STATE, shape=(dims[STATE],)),
            ENV: PolicyFeature(type=FeatureType.ENV, shape=(dims[ENV],)),
        },
        output_features={ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(dims[ACTION],))},
    )
    policy = DiffusionPolicy(cfg).train()
    out["train"] = _train_samples(
        torch, policy, _loader(torch, st_ds), lambda b: policy.forward(b)[0], args.steps
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", choices=["ember", "lerobot"], help="(internal) measure one side, print JSON")
    ap.add_argument("--camera", help="(internal) camera dataset root")
    ap.add_argument("--state", help="(internal) state dataset root")
    ap.add_argument(
        "--peer-python",
        default=os.environ.get("EMBER_LEROBOT_PYTHON", str(ROOT.parent / "peer-lerobot/bin/python")),
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=50, help="camera episodes (PushT: half as many)")
    ap.add_argument("--samples", type=int, default=100, help="random single samples per measurement")
    ap.add_argument("--batches", type=int, default=20, help="DataLoader batches of 64 per measurement")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--out", default=str(ROOT / "bench/results/compare/data.json"))
    args = ap.parse_args()
    if args.side:
        fn = ember_side if args.side == "ember" else lerobot_side
        print(json.dumps(fn(Path(args.camera), Path(args.state), args)))
        return
    check_peer(args.peer_python)
    with tempfile.TemporaryDirectory() as tmp:
        print("writing the datasets ...", flush=True)
        camera, state = make_datasets(Path(tmp), args.episodes)
        runs = run_rounds(
            __file__,
            args.peer_python,
            [
                "--camera",
                str(camera),
                "--state",
                str(state),
                "--samples",
                str(args.samples),
                "--batches",
                str(args.batches),
                "--steps",
                str(args.steps),
            ],
            args.rounds,
        )
    rows = summarize(
        runs,
        list(runs["ember"][0]),
        lambda m: m.removesuffix(" uncached"),
        "metric (samples/s, higher is better)",
    )
    write_json(args.out, args.rounds, rows, runs)


if __name__ == "__main__":
    main()
