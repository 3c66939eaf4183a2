"""``ember info``: what is installed and registered, or a summary of a dataset or checkpoint."""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
from typing import Any

PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "diffusers",
    "transformers",
    "accelerate",
    "mujoco",
    "mink",
    "pybullet",
    "gymnasium",
    "pyarrow",
    "av",
    "open3d-cpu",
    "ros-rclpy",
)


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def run_info(cfg: Any) -> int:
    if cfg.dataset:
        from ember.data import EmberDataset

        ds = EmberDataset(cfg.dataset)
        info = ds.meta.info
        print(
            f"dataset {cfg.dataset}: {ds.num_episodes} episodes, {ds.num_frames} frames at {ds.fps} fps, "
            f"codebase {info.get('codebase_version')}, robot {info.get('robot_type')}"
        )
        for key, feat in ds.features.items():
            print(f"  {key:<34} {feat['dtype']:<8} {tuple(feat['shape'])}")
        return 0
    if cfg.policy_path:
        from ember.eval import resolve_checkpoint

        path = resolve_checkpoint(cfg.policy_path)
        config = json.loads((path / "config.json").read_text())
        print(f"policy {path}: type {config.get('type')}")
        print(json.dumps(config, indent=2))
        return 0
    import torch

    print(f"ember {_version('ember')} on Python {platform.python_version()} ({platform.machine()})")
    for name in PACKAGES:
        print(f"  {name:<14} {_version(name)}")
    print(
        f"  device: {'cuda (' + torch.cuda.get_device_name(0) + ')' if torch.cuda.is_available() else 'cpu'}, "
        f"{torch.get_num_threads()} torch threads"
    )
    import gymnasium as gym

    import ember.sims  # noqa: F401  (registers the ember/* ids)

    print("tasks:", ", ".join(sorted(k for k in gym.registry if k.startswith("ember/"))))
    for kind, names in registered_types().items():
        print(f"{kind}:", ", ".join(names) if names else "(none registered)")
    return 0


def registered_types() -> dict[str, list[str]]:
    """The registered policy, algorithm and labeler types (:mod:`ember.registry`), by kind."""
    from ember.policies import available_policies
    from ember.registry import ALGORITHMS, LABELERS

    return {"policies": available_policies(), "algorithms": ALGORITHMS.names(), "labelers": LABELERS.names()}
