"""Action-chunk latency of the generative heads and the control rate it allows on this CPU, with chunking.

For each head (DDPM-100, DDIM-10, DPM-Solver-10 and flow-5 steps, the last two also with their per-step network
frozen by TorchScript; BC for reference) and each observation kind
(PushT's low-dim state; one 96x96 camera through the small CNN or a ResNet-18) this measures, at batch 1:

- ``chunk_ms``: one ``predict_action_chunk`` (encoder + every denoising step), median and p95 over ``--repeats``;
- ``rate_hz``: actions per second through ``select_action`` over ``--steps`` control steps, which re-plans once
  every ``n_action_steps`` (8) steps, i.e. what a synchronous control loop sustains on average;
- ``replan_hz``: ``1 / p95(chunk)``, the rate at which even the re-planning step meets its deadline (what a loop
  that never runs late needs, unless inference runs asynchronously next to execution).

Architectures are the defaults of the configs (UNet 64-128-256, horizon 16), weights random (latency does not
depend on them). Torch threads are set by ``--threads`` (default 1: on a shared 2-core machine two threads run
slower than one under load); the load average is recorded next to the numbers.

    .venv/bin/python bench/infer/latency.py            # prints a table, writes bench/results/infer/latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ember.policies import make_policy, make_policy_config  # noqa: E402

STATE, ENV, CAMERA = "observation.state", "observation.environment_state", "observation.images.front"
HEADS: dict[str, tuple[str, dict]] = {
    "DDPM-100": ("diffusion", dict(noise_scheduler="ddpm", num_inference_steps=100)),
    "DDIM-10": ("diffusion", dict(noise_scheduler="ddim", num_inference_steps=10)),
    "DPM-10": ("diffusion", dict(noise_scheduler="dpm", num_inference_steps=10)),
    "flow-5": ("flow", dict(num_inference_steps=5)),
    "BC": ("bc", {}),
    "DDIM-10 frozen": ("diffusion", dict(noise_scheduler="ddim", num_inference_steps=10)),
    "flow-5 frozen": ("flow", dict(num_inference_steps=5)),
}
"""``frozen``: the per-step network traced and frozen with TorchScript (``policy.freeze_for_inference()``)."""
OBSERVATIONS: dict[str, dict] = {
    "state (PushT)": {},
    "camera 96px small-CNN": dict(encoder={"vision_backbone": "small_cnn"}),
    "camera 96px ResNet-18": dict(encoder={"vision_backbone": "resnet18"}),
}


def build(head: str, obs: str) -> torch.nn.Module:
    kind, extra = HEADS[head]
    inputs = {STATE: {"shape": [9]}, ENV: {"shape": [6]}}
    if obs != "state (PushT)":
        inputs = {STATE: {"shape": [9]}, CAMERA: {"shape": [3, 96, 96]}}
    cfg = make_policy_config(
        kind, input_features=inputs, output_features={"action": {"shape": [2]}}, **extra, **OBSERVATIONS[obs]
    )
    stats = {
        k: {"min": -np.ones(v["shape"][0]), "max": np.ones(v["shape"][0])}
        for k, v in inputs.items()
        if k != CAMERA
    }
    stats["action"] = {"min": -np.ones(2), "max": np.ones(2)}
    policy = make_policy(cfg, dataset_stats=stats).eval()
    if head.endswith("frozen"):
        policy.freeze_for_inference(batch_size=1)
    return policy


def observation(obs: str, g: torch.Generator) -> dict:
    out = {STATE: torch.rand(1, 9, generator=g)}
    if obs == "state (PushT)":
        out[ENV] = torch.rand(1, 6, generator=g)
    else:
        out[CAMERA] = torch.randint(0, 256, (1, 96, 96, 3), dtype=torch.uint8, generator=g)
    return out


@torch.inference_mode()
def measure(head: str, obs: str, repeats: int, steps: int) -> dict:
    policy = build(head, obs)
    g = torch.Generator().manual_seed(0)
    prepared = {**policy.prepare_observation(observation(obs, g))}
    for _ in range(3):  # warm-up: allocator, oneDNN primitives
        policy.predict_action_chunk(prepared)
    chunk = []
    for _ in range(repeats):
        t = time.perf_counter()
        policy.predict_action_chunk(prepared)
        chunk.append(time.perf_counter() - t)
    policy.reset()
    per_step = []
    t0 = time.perf_counter()
    for _ in range(steps):
        t = time.perf_counter()
        policy.select_action(observation(obs, g))
        per_step.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    chunk_ms = np.asarray(chunk) * 1e3
    return {
        "head": head,
        "observation": obs,
        "chunk_ms_median": float(np.median(chunk_ms)),
        "chunk_ms_p95": float(np.percentile(chunk_ms, 95)),
        "n_action_steps": policy.config.n_action_steps,
        "rate_hz": steps / total,
        "step_ms_p99": float(np.percentile(np.asarray(per_step) * 1e3, 99)),
        "replan_hz": 1e3 / float(np.percentile(chunk_ms, 95)),
        "parameters": sum(p.numel() for p in policy.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=160)
    parser.add_argument("--heads", default=",".join(HEADS))
    parser.add_argument("--observations", default=",".join(OBSERVATIONS))
    parser.add_argument("--out", default=str(ROOT / "bench/results/infer/latency.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    load_before = os.getloadavg()
    for obs in args.observations.split(","):
        for head in args.heads.split(","):
            row = measure(head, obs, args.repeats, args.steps)
            rows.append(row)
            print(
                f"{obs:<26} {head:<9} chunk {row['chunk_ms_median']:7.1f} ms (p95 {row['chunk_ms_p95']:7.1f})"
                f"  loop {row['rate_hz']:7.1f} Hz  replan {row['replan_hz']:6.1f} Hz",
                flush=True,
            )
    meta = {
        "torch": torch.__version__,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "batch 1, random weights, default architectures; rate_hz = select_action calls per second with "
        "re-planning every n_action_steps; replan_hz = 1 / p95 chunk latency",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(
        f"\nthreads={args.threads}, load average {load_before[0]:.1f} -> {meta['load_average_after'][0]:.1f}; "
        f"wrote {out}"
    )
    print("\n| observation | head | chunk latency median (p95) | control loop rate | re-plan-step rate |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['observation']} | {r['head']} | {r['chunk_ms_median']:.1f} ms ({r['chunk_ms_p95']:.1f}) | "
            f"{r['rate_hz']:.0f} Hz | {r['replan_hz']:.0f} Hz |"
        )


if __name__ == "__main__":
    main()
