"""ember vs LeRobot 0.4.4, the diffusion model alone: one training step on a fixed batch, and one action chunk.

Both sides build a Diffusion Policy of the same shape from a config (no dataset: min-max stats of [-1, 1]):
PushT-like state input (``observation.state`` 2-D, ``observation.environment_state`` 16-D, 2 observation steps),
2-D actions, horizon 16, 8 actions per chunk, the temporal UNet 64-128-256 with kernel 5, 8 groups, a 128-D step
embedding and LeRobot's depth (2 residual blocks per level, FiLM scale + bias), DDPM with 100 training steps.

- ``step_ms``: forward + backward + ``clip_grad_norm_(10)`` + each trainer's own optimizer step (lr 1e-4, betas
  0.95/0.999, weight decay 1e-6) on one fixed batch of 64 windows, median of ``--steps`` after 3 warm-up steps.
  LeRobot's diffusion preset builds ``torch.optim.Adam``; ``ember train`` builds
  ``ember.algorithms.optim.adamw`` (AdamW, fused). ember also reports ``step_ms with torch Adam``: the same
  ``torch.optim.Adam`` as LeRobot's, so only the model differs;
- ``chunk_ms``: one new action chunk at batch 1 (``reset()`` then ``select_action``), DDIM-10 and DDPM-100,
  median of ``--repeats``; for ember both eager and TorchScript-frozen (what ``ember eval`` and the ROS 2 policy
  node run by default).

Each side runs in its own process and venv (LeRobot 0.4.4 needs its side venv: ``../shared/tools/peer-lerobot.sh
DIR``), alternating for ``--rounds`` rounds with one torch thread; the table gives medians over rounds and
ember / LeRobot ratios (time: lower is better).

    .venv/bin/python bench/compare/model.py --peer-python ../peer-lerobot/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from rounds import check_peer, run_rounds, summarize, torch_adam, train_step, write_json

ROOT = Path(__file__).resolve().parents[2]
STATE, ENV, ACTION = "observation.state", "observation.environment_state", "action"
DIMS = {STATE: 2, ENV: 16, ACTION: 2}
N_OBS, HORIZON, N_ACTION, BATCH = 2, 16, 8, 64


def _batch(torch):
    g = torch.Generator().manual_seed(0)
    return {
        STATE: torch.rand(BATCH, N_OBS, DIMS[STATE], generator=g) * 2 - 1,
        ENV: torch.rand(BATCH, N_OBS, DIMS[ENV], generator=g) * 2 - 1,
        ACTION: torch.rand(BATCH, HORIZON, DIMS[ACTION], generator=g) * 2 - 1,
        "action_is_pad": torch.zeros(BATCH, HORIZON, dtype=torch.bool),
    }


def _observation(torch):
    g = torch.Generator().manual_seed(1)
    return {
        STATE: torch.rand(1, DIMS[STATE], generator=g) * 2 - 1,
        ENV: torch.rand(1, DIMS[ENV], generator=g) * 2 - 1,
    }


def _time_steps(torch, model, loss_of, steps: int, optimizer) -> float:
    times = []
    for i in range(steps + 3):
        t = time.perf_counter()
        train_step(torch, model, loss_of(), optimizer)
        if i >= 3:
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _time_chunks(torch, policy, repeats: int) -> float:
    obs = _observation(torch)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            policy.reset()
            t = time.perf_counter()
            policy.select_action(dict(obs))
            if i >= 2:
                times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def ember_side(steps: int, repeats: int) -> dict:
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from ember.policies import make_policy, make_policy_config

    torch.set_num_threads(1)
    torch.manual_seed(0)
    stats = {k: {"min": -np.ones(d), "max": np.ones(d)} for k, d in DIMS.items()}

    def build(**kw):
        cfg = make_policy_config(
            "diffusion",
            input_features={STATE: {"shape": [DIMS[STATE]]}, ENV: {"shape": [DIMS[ENV]]}},
            output_features={ACTION: {"shape": [DIMS[ACTION]]}},
            n_obs_steps=N_OBS,
            horizon=HORIZON,
            n_action_steps=N_ACTION,
            denoiser={
                "down_dims": [64, 128, 256],
                "kernel_size": 5,
                "n_groups": 8,
                "diffusion_step_embed_dim": 128,
                "res_blocks_per_level": 2,
            },
            **kw,
        )
        return make_policy(cfg, dataset_stats=stats)

    from ember.algorithms.optim import OptimConfig, adamw

    batch = _batch(torch)
    out: dict = {}
    for key, make_optimizer in (
        ("step_ms", lambda ps: adamw(ps, OptimConfig(lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6))),
        ("step_ms with torch Adam", lambda ps: torch_adam(torch, ps)),
    ):
        torch.manual_seed(0)
        policy = build().train()
        out["params"] = sum(p.numel() for p in policy.parameters())
        out[key] = _time_steps(
            torch, policy, lambda p=policy: p(batch)["loss"], steps, make_optimizer(policy.parameters())
        )
    for name, kw, reps in (
        ("DDIM-10", dict(noise_scheduler="ddim", num_inference_steps=10), repeats),
        ("DDPM-100", dict(noise_scheduler="ddpm", num_inference_steps=100), max(3, repeats // 6)),
    ):
        policy = build(**kw).eval()
        out[f"chunk_ms {name} eager"] = _time_chunks(torch, policy, reps)
        policy.freeze_for_inference(batch_size=1)
        out[f"chunk_ms {name}"] = _time_chunks(torch, policy, reps)
    return out


def lerobot_side(steps: int, repeats: int) -> dict:
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    torch.set_num_threads(1)
    torch.manual_seed(0)

    def build(**kw):
        cfg = DiffusionConfig(
            n_obs_steps=N_OBS,
            horizon=HORIZON,
            n_action_steps=N_ACTION,
            down_dims=(64, 128, 256),
            kernel_size=5,
            n_groups=8,
            diffusion_step_embed_dim=128,
            use_film_scale_modulation=True,
            device="cpu",
            input_features={
                STATE: PolicyFeature(type=FeatureType.STATE, shape=(DIMS[STATE],)),
                ENV: PolicyFeature(type=FeatureType.ENV, shape=(DIMS[ENV],)),
            },
            output_features={ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(DIMS[ACTION],))},
            **kw,
        )
        return DiffusionPolicy(cfg)

    policy = build().train()
    batch = _batch(torch)
    out = {
        "params": sum(p.numel() for p in policy.parameters()),
        "step_ms": _time_steps(
            torch,
            policy,
            lambda: policy.forward(dict(batch))[0],
            steps,
            torch_adam(torch, policy.parameters()),
        ),
    }
    for name, kw, reps in (
        ("DDIM-10", dict(noise_scheduler_type="DDIM", num_inference_steps=10), repeats),
        ("DDPM-100", dict(noise_scheduler_type="DDPM", num_inference_steps=100), max(3, repeats // 6)),
    ):
        out[f"chunk_ms {name}"] = _time_chunks(torch, build(**kw).eval(), reps)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", choices=["ember", "lerobot"], help="(internal) measure one side, print JSON")
    ap.add_argument(
        "--peer-python",
        default=os.environ.get("EMBER_LEROBOT_PYTHON", str(ROOT.parent / "peer-lerobot/bin/python")),
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "bench/results/compare/model.json"))
    args = ap.parse_args()
    if args.side:
        fn = ember_side if args.side == "ember" else lerobot_side
        print(json.dumps(fn(args.steps, args.repeats)))
        return
    check_peer(args.peer_python)
    runs = run_rounds(
        __file__,
        args.peer_python,
        ["--steps", str(args.steps), "--repeats", str(args.repeats)],
        args.rounds,
        shown=lambda key: key != "params",
    )
    rows = summarize(
        runs,
        [k for k in runs["ember"][0] if k != "params"],
        lambda m: m.removesuffix(" eager").removesuffix(" with torch Adam"),
        "metric (ms, lower is better)",
    )
    print(f"params: ember {runs['ember'][0]['params']:,}, LeRobot {runs['lerobot'][0]['params']:,}")
    write_json(args.out, args.rounds, rows, runs)


if __name__ == "__main__":
    main()
