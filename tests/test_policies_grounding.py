"""Grounding a decoded goal on the observed objects (``ground_hidden_state``): the nearest entity in the dataset's
units replaces the decoded position, the hidden dims themselves are never read, and bad specs are clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ember.policies import PolicyError, load_policy, make_policy, make_policy_config
from ember.policies.grounding import ground_hidden, grounding_for_names
from ember.policies.normalize import Normalizer

ENV = "observation.environment_state"
NAMES = [
    "ee.x",
    "ee.y",
    "object_0.x",
    "object_0.y",
    "object_1.x",
    "object_1.y",
    "object_2.x",
    "object_2.y",
    "goal_object.x",
    "goal_object.y",
    "goal_is_object_0",
]
GOAL = [8, 9]
OBJECTS = [[2, 3], [4, 5], [6, 7]]
GROUP = {"feature": ENV, "dims": GOAL, "candidates": OBJECTS}
# very different per-dim ranges: distances must be taken in metres, not in normalized units
STD = np.array([1.0, 1.0, 0.1, 10.0, 0.1, 10.0, 0.1, 10.0, 0.5, 3.0, 1.0], dtype=np.float32)
MEAN = np.linspace(-1, 1, len(NAMES)).astype(np.float32)


def stats() -> dict:
    return {
        ENV: {"mean": MEAN, "std": STD, "min": MEAN - 2 * STD, "max": MEAN + 2 * STD},
        "action": {"mean": np.zeros(2), "std": np.ones(2), "min": -np.ones(2), "max": np.ones(2)},
    }


def normalizer() -> Normalizer:
    return Normalizer({ENV: {"shape": [len(NAMES)]}}, {"ENV": "mean_std"}, stats())


def test_names_resolve_to_groups_of_the_same_axes() -> None:
    features = {
        ENV: {"shape": [len(NAMES)], "names": NAMES},
        "observation.state": {"shape": [3], "names": None},
    }
    groups = grounding_for_names(features, ["observation.state", ENV], ["goal_object:object_*"])
    assert groups == [GROUP]
    with pytest.raises(PolicyError, match="must read 'target:entity_pattern'"):
        grounding_for_names(features, [ENV], ["goal_object"])
    with pytest.raises(PolicyError, match="no state feature names both 'goal_pad.<axis>'"):
        grounding_for_names(features, [ENV], ["goal_pad:pad_*"])


def test_the_nearest_object_in_metres_replaces_the_decoded_goal_and_hidden_dims_are_never_read() -> None:
    norm = normalizer()
    physical = torch.tensor(
        [
            [0.0, 0.0, 0.10, 0.0, 0.30, 0.0, 0.50, 5.0, 0, 0, 0],
            [0.0, 0.0, 0.10, 0.0, 0.30, 0.0, 0.50, 5.0, 0, 0, 0],
        ]
    )
    decoded_physical = torch.tensor([[0.12, 0.9], [0.47, 4.0]])  # near object 0; near object 2
    latest = norm.normalize_feature(ENV, physical)
    full = physical.clone()
    full[:, GOAL] = decoded_physical
    decoded = norm.normalize_feature(ENV, full)[:, GOAL]
    layout = [(ENV, d) for d in GOAL]
    grounded, chosen = ground_hidden(
        decoded, layout, {ENV: latest}, [GROUP], norm.normalize_feature, norm.unnormalize_feature
    )
    assert chosen[:, 0].tolist() == [0, 2]
    back = physical.clone()
    back[:, GOAL] = torch.tensor([[0.10, 0.0], [0.50, 5.0]])
    torch.testing.assert_close(grounded, norm.normalize_feature(ENV, back)[:, GOAL])
    poisoned = latest.clone()
    poisoned[:, GOAL] = 1e6  # the true goal sits here at inference: grounding must not look at it
    again, _ = ground_hidden(
        decoded, layout, {ENV: poisoned}, [GROUP], norm.normalize_feature, norm.unnormalize_feature
    )
    torch.testing.assert_close(again, grounded)


def make(tmp_ground: list | None = None, **kwargs):
    torch.manual_seed(0)
    cfg = make_policy_config(
        "bc",
        input_features={ENV: {"shape": [len(NAMES)]}},
        output_features={"action": {"shape": [2]}},
        horizon=8,
        n_action_steps=4,
        hidden_dims=(32,),
        conditioning=("keypoints",),
        mask_state_dims={ENV: GOAL + [10]},
        hidden_state_dims={ENV: GOAL},
        hidden_state_weight=1.0,
        conditioning_as_state=True,
        ground_hidden_state=[GROUP] if tmp_ground is None else tmp_ground,
        **kwargs,
    )
    return make_policy(cfg, dataset_stats=stats())


def observation(batch: int = 3) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        ENV: torch.randn(batch, len(NAMES), generator=g) * torch.as_tensor(STD) + torch.as_tensor(MEAN),
        "conditioning.keypoints": torch.rand(batch, 2, 2, generator=g),
    }


def test_a_grounded_policy_acts_on_an_observed_object_and_round_trips(tmp_path: Path) -> None:
    policy = make().eval()
    obs = observation()
    batch = {**obs, **policy.prepare_observation(obs)}
    encoder = policy.model.obs_encoder
    with torch.no_grad():
        head_in = policy.encode(batch, train=False)
    chosen = policy.last_grounding[:, 0]
    norm = policy.normalizer
    latest = norm.normalize_feature(ENV, obs[ENV])
    for row, k in enumerate(chosen.tolist()):
        expected = obs[ENV][row].clone()
        expected[GOAL] = obs[ENV][row, OBJECTS[k]]
        torch.testing.assert_close(
            head_in[row, encoder.observation_dim :], norm.normalize_feature(ENV, expected)[GOAL]
        )
    assert not torch.allclose(head_in[:, encoder.observation_dim :], latest[:, GOAL])  # not the true goal
    policy.save_pretrained(tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.config.ground_hidden_state == [GROUP]
    torch.manual_seed(1)
    expected_actions = policy.predict_action_chunk(batch)
    torch.manual_seed(1)
    torch.testing.assert_close(loaded.predict_action_chunk(batch), expected_actions, rtol=0, atol=0)


def test_bad_grounding_is_a_clear_error() -> None:
    with pytest.raises(PolicyError, match="set conditioning_as_state=True"):
        make_policy_config("bc", conditioning=("keypoints",), ground_hidden_state=[GROUP])
    with pytest.raises(PolicyError, match="needs at least two candidates"):
        make(tmp_ground=[{**GROUP, "candidates": [[2, 3]]}])
    with pytest.raises(PolicyError, match="must list 2 non-negative dims"):
        make(tmp_ground=[{**GROUP, "candidates": [[2, 3], [4]]}])
    with pytest.raises(PolicyError, match="which the goal decoder does not predict"):
        make(tmp_ground=[{**GROUP, "dims": [0, 1]}])
    with pytest.raises(PolicyError, match=r"reads masked dims \[10\]"):
        make(tmp_ground=[{**GROUP, "candidates": [[2, 3], [10, 5]]}])
