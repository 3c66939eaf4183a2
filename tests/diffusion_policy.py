"""The small diffusion policies the policy tests build on the linear task (:mod:`linear_task`): its features, full
stats (optionally with a camera) and a seeded :func:`make`."""

from __future__ import annotations

import numpy as np
import torch
from linear_task import ACTION_DIM, STATE, STATE_DIM

from ember.policies import make_policy, make_policy_config
from ember.policies.diffusion.modeling_diffusion import DiffusionPolicy

CAMERA = "observation.images.front"

# A small UNet so the learning tests train in seconds on a 2-core CPU.
SMALL = dict(down_dims=(32, 64), horizon=8, n_action_steps=4, diffusion_step_embed_dim=32)


def features(camera: bool = False) -> dict:
    inputs = {STATE: {"shape": [STATE_DIM], "dtype": "float32"}}
    if camera:
        inputs[CAMERA] = {"shape": [3, 96, 96], "dtype": "video"}
    return {
        "input_features": inputs,
        "output_features": {"action": {"shape": [ACTION_DIM], "dtype": "float32"}},
    }


def stats(camera: bool = False) -> dict[str, dict[str, np.ndarray]]:
    def full(dim: int) -> dict[str, np.ndarray]:
        return {"min": -np.ones(dim), "max": np.ones(dim), "mean": np.zeros(dim), "std": np.ones(dim) * 0.5}

    out = {STATE: full(STATE_DIM), "action": full(ACTION_DIM)}
    if camera:
        out[CAMERA] = {
            "min": np.zeros((3, 1, 1)),
            "max": np.ones((3, 1, 1)),
            "mean": np.full((3, 1, 1), 0.5),
            "std": np.full((3, 1, 1), 0.25),
        }
    return out


def make(camera: bool = False, **kwargs) -> DiffusionPolicy:
    torch.manual_seed(0)
    config = make_policy_config("diffusion", **features(camera), **kwargs)
    policy = make_policy(config, dataset_stats=stats(camera))
    assert isinstance(policy, DiffusionPolicy)
    return policy
