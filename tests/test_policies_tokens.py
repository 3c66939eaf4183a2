"""Encoders return tokens + mask + a pooled vector; the pooled vector is what the heads read (unchanged meaning),
and the observation history is one implementation for select_action and the ROS 2 policy runner."""

from __future__ import annotations

import pytest
import torch
from linear_task import ACTION_DIM, STATE, STATE_DIM

from ember.policies import PolicyError, make_policy, make_policy_config
from ember.policies.history import ObservationHistory

CAMERA = "observation.images.front"


def _policy(**kwargs):
    torch.manual_seed(0)
    cfg = make_policy_config(
        "flow",
        input_features={
            STATE: {"shape": [STATE_DIM], "dtype": "float32"},
            CAMERA: {"shape": [3, 32, 32], "dtype": "video"},
        },
        output_features={"action": {"shape": [ACTION_DIM], "dtype": "float32"}},
        horizon=8,
        n_action_steps=4,
        down_dims=(16, 32),
        vision_backbone="small_cnn",
        crop_shape=None,
        spatial_softmax_num_keypoints=4,
        **kwargs,
    )
    stats = {
        STATE: {"min": -torch.ones(STATE_DIM).numpy(), "max": torch.ones(STATE_DIM).numpy()},
        "action": {"min": -torch.ones(ACTION_DIM).numpy(), "max": torch.ones(ACTION_DIM).numpy()},
    }
    return make_policy(cfg, dataset_stats=stats).eval()


def test_tokens_are_one_per_step_and_source_and_pool_to_what_the_head_reads() -> None:
    policy = _policy()
    g = torch.Generator().manual_seed(0)
    batch = {
        STATE: torch.rand(3, 2, STATE_DIM, generator=g),
        CAMERA: torch.rand(3, 2, 3, 32, 32, generator=g),
    }
    with torch.no_grad():
        tokens = policy.encode_tokens(batch)
        pooled = policy.encode(batch, train=False)
    assert tokens.names == (f"{STATE}@-1", f"{CAMERA}@-1", f"{STATE}@0", f"{CAMERA}@0")
    assert tokens.widths == (STATE_DIM, 8, STATE_DIM, 8)  # spatial softmax: 4 keypoints x (x, y)
    assert tokens.tokens.shape == (3, 4, 8) and tokens.mask.shape == (3, 4) and tokens.mask.all()
    torch.testing.assert_close(tokens.pooled, pooled)
    torch.testing.assert_close(
        tokens.tokens[:, 2, :STATE_DIM], policy.normalizer.normalize(batch)[STATE][:, 1]
    )
    assert (tokens.tokens[:, 0, STATE_DIM:] == 0).all()  # narrower tokens are zero-padded


def test_language_conditioning_adds_a_token() -> None:  # the packaged all-MiniLM-L6-v2 embeds the instruction
    policy = _policy(conditioning=("language",))
    batch = {
        STATE: torch.rand(2, 2, STATE_DIM),
        CAMERA: torch.rand(2, 2, 3, 32, 32),
        "task": ["left", "right"],
    }
    with torch.no_grad():
        tokens = policy.encode_tokens(batch)
    assert tokens.names[-1] == "language" and tokens.pooled.shape[1] == sum(tokens.widths)


def test_the_history_fills_with_the_first_observation_then_slides() -> None:
    history = ObservationHistory(3)
    history.push({STATE: torch.tensor([[1.0]])})
    assert history.window()[STATE].flatten().tolist() == [1.0, 1.0, 1.0]
    history.push({STATE: torch.tensor([[2.0]])})
    history.push({STATE: torch.tensor([[3.0]])})
    history.push({STATE: torch.tensor([[4.0]])})
    assert history.window()[STATE].flatten().tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(PolicyError, match="batch size changed"):
        history.push({STATE: torch.zeros(2, 1)})
    history.reset()
    with pytest.raises(PolicyError, match="no observation pushed"):
        history.window()
