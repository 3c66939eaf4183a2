"""Normalization travels with the weights and a missing stat is an error; observations that do not fit the
policy say what is wrong (real modules, CPU, seeded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusion_policy import SMALL, features, make, stats
from linear_task import STATE, STATE_DIM, linear_batch

from ember.policies import (
    PolicyError,
    make_policy,
    make_policy_config,
)
from ember.policies.normalize import Normalizer


# ---------------------------------------------------------------------------- normalization and errors
def test_missing_stat_raises_at_build_time() -> None:
    bad = stats()
    del bad[STATE]["min"]
    config = make_policy_config("diffusion", **features(), **SMALL)
    with pytest.raises(PolicyError, match=r"'observation.state' has no 'min' stat; recompute dataset stats"):
        make_policy(config, dataset_stats=bad)
    del bad[STATE]
    with pytest.raises(PolicyError, match="no stats at all"):
        make_policy(config, dataset_stats=bad)


def test_stats_never_set_raise_at_use() -> None:
    policy = make_policy(make_policy_config("diffusion", **features(), **SMALL))  # no dataset_stats
    batch = linear_batch(policy.config, 2, torch.Generator().manual_seed(0))
    with pytest.raises(PolicyError, match=r"has no 'min' stat"):
        policy(batch)
    with pytest.raises(PolicyError, match=r"has no 'min' stat"):
        policy.eval().select_action({STATE: torch.zeros(1, STATE_DIM)})


def test_normalizer_maps_to_unit_range_and_back() -> None:
    feats = {"observation.state": {"shape": [2]}, "action": {"shape": [2]}}
    st = {
        "observation.state": {"mean": np.array([1.0, -1.0]), "std": np.array([2.0, 0.5])},
        "action": {"min": np.array([0.0, -4.0]), "max": np.array([2.0, 4.0])},
    }
    norm = Normalizer(feats, {"STATE": "mean_std", "ACTION": "min_max"}, st)
    out = norm.normalize(
        {
            "observation.state": torch.tensor([3.0, -1.5]),
            "action": torch.tensor([[0.0, 4.0], [2.0, -4.0]]),
            "task": ["x"],
        }
    )
    torch.testing.assert_close(out["observation.state"], torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(out["action"], torch.tensor([[-1.0, 1.0], [1.0, -1.0]]))
    assert out["task"] == ["x"]
    torch.testing.assert_close(
        norm.unnormalize_action(out["action"]), torch.tensor([[0.0, 4.0], [2.0, -4.0]])
    )
    with pytest.raises(PolicyError, match="normalization_mapping has no entry for ENV"):
        Normalizer({"observation.environment_state": {"shape": [2]}}, {"STATE": "min_max"})


def test_observation_missing_a_key_names_it_and_the_keys_present() -> None:
    policy = make(camera=True, vision_backbone="small_cnn")
    batch = linear_batch(policy.config, 2, torch.Generator().manual_seed(0))
    with pytest.raises(
        PolicyError,
        match=r"missing 'observation.images.front'.*keys present: \['action', 'action_is_pad', 'observation.state'\]",
    ):
        policy(batch)
    with pytest.raises(PolicyError, match=r"missing 'observation.images.front'"):
        policy.eval().select_action({STATE: torch.zeros(1, STATE_DIM)})


def test_an_observation_of_another_width_says_the_environment_changed() -> None:
    policy = make(**SMALL).eval()
    with pytest.raises(
        PolicyError,
        match=rf"has shape \({STATE_DIM + 5},\) per sample; this policy was trained on "
        rf"\({STATE_DIM},\).*environment's observation differs",
    ):
        policy.select_action({STATE: torch.zeros(1, STATE_DIM + 5)})


def test_wrong_window_length_says_how_to_fix() -> None:
    policy = make(**SMALL)
    batch = linear_batch(policy.config, 2, torch.Generator().manual_seed(0))
    batch["action"] = batch["action"][:, :5]
    with pytest.raises(PolicyError, match="action_delta_indices"):
        policy(batch)
