"""Masked state dims and the hidden-state loss: what the policy never sees, what the conditioning learns to
predict from it, and conditioning read as state (CPU, seeded)."""

from __future__ import annotations

import conditioning_policy
import numpy as np
import pytest
import torch
from conditioning_policy import STATE, HashEmbedder, config, make, observation, window_batch

from ember.policies import PolicyError

fake_language = conditioning_policy.fake_language  # the fixture: a fresh HashEmbedder for each test


def test_masked_state_dims_are_never_seen(fake_language: HashEmbedder) -> None:
    policy = make(
        kind="bc", camera=False, conditioning=("keypoints",), mask_state_dims={STATE: [2, 3]}
    ).eval()
    obs = observation(policy, 2)
    a = policy.predict_action_chunk(obs)
    obs[STATE][:, 2:] = torch.tensor([[5.0, -5.0], [0.3, 0.1]])
    torch.testing.assert_close(policy.predict_action_chunk(obs), a, rtol=0, atol=0)
    obs[STATE][:, 0] += 1.0
    assert not torch.allclose(policy.predict_action_chunk(obs), a)
    with pytest.raises(PolicyError, match="exceeds its 4 dims"):
        make(mask_state_dims={STATE: [7]})


def test_hidden_state_loss_teaches_the_conditioning_what_the_mask_hides(fake_language: HashEmbedder) -> None:
    # the hidden dims equal the keypoints' coordinates: only the keypoint encoder can predict them
    policy = make(
        kind="bc",
        camera=False,
        conditioning=("keypoints",),
        mask_state_dims={STATE: [2, 3]},
        hidden_state_weight=1.0,
    )
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=3e-3)
    losses = []
    for step in range(60):
        batch = window_batch(policy)
        g = torch.Generator().manual_seed(step)
        points = torch.rand(4, 2, 2, generator=g)
        batch["conditioning.keypoints"] = points
        batch[STATE][:, :, 2:] = points[:, None, 0, :].expand(-1, batch[STATE].shape[1], -1)
        out = policy(batch)
        losses.append(out["hidden_state"].item())
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5]), losses
    assert "hidden_state" not in make(kind="bc", camera=False, conditioning=("keypoints",))(
        window_batch(policy)
    )


@pytest.mark.parametrize("learns_from", ["hidden_state", "all"])
def test_conditioning_can_learn_from_the_hidden_state_loss_alone(
    learns_from: str, fake_language: HashEmbedder
) -> None:
    policy = make(
        kind="flow",
        camera=False,
        conditioning=("keypoints",),
        mask_state_dims={STATE: [2, 3]},
        hidden_state_weight=1.0,
        conditioning_learns_from=learns_from,
    )
    batch = window_batch(policy)
    batch["conditioning.keypoints"] = torch.rand(4, 2, 2, generator=torch.Generator().manual_seed(0))
    params = list(policy.model.obs_encoder.keypoints.parameters())
    policy.zero_grad()
    policy(batch)["loss"].backward()
    total = [p.grad.clone() for p in params]
    _, aux = policy._encode(batch, train=True)
    hidden_only = torch.autograd.grad(aux["hidden_state"], params)
    same = all(torch.allclose(t, h, rtol=1e-5, atol=1e-7) for t, h in zip(total, hidden_only, strict=True))
    # "hidden_state": the action loss never reaches the keypoint encoder; "all": it does
    assert same == (learns_from == "hidden_state")
    assert all(h.abs().sum() > 0 for h in hidden_only)


def test_conditioning_learning_from_the_hidden_state_needs_hidden_dims(fake_language: HashEmbedder) -> None:
    with pytest.raises(PolicyError, match="set hidden_state_weight > 0"):
        config(conditioning=("keypoints",), conditioning_learns_from="hidden_state")
    with pytest.raises(PolicyError, match="need hidden state dims"):
        make(
            kind="bc",
            camera=False,
            conditioning=("keypoints",),
            hidden_state_weight=1.0,
            conditioning_learns_from="hidden_state",
        )
    with pytest.raises(PolicyError, match="conditioning_learns_from 'actions' is unknown"):
        config(conditioning_learns_from="actions")
    with pytest.raises(
        PolicyError, match=r"hidden_state_dims\['observation.state'\] = \[1\] must be masked dims"
    ):
        make(
            kind="bc",
            camera=False,
            mask_state_dims={STATE: [2, 3]},
            hidden_state_weight=1.0,
            hidden_state_dims={STATE: [1]},
        )


def test_conditioning_as_state_acts_on_the_true_goal_in_training_and_the_decoded_one_after(
    fake_language: HashEmbedder,
) -> None:
    policy = make(
        kind="bc",
        camera=False,
        conditioning=("keypoints",),
        mask_state_dims={STATE: [2, 3]},
        hidden_state_weight=1.0,
        conditioning_as_state=True,
    )
    encoder = policy.model.obs_encoder
    assert encoder.output_dim == encoder.observation_dim + 2  # the head reads the state plus two goal dims
    batch = window_batch(policy)
    batch["conditioning.keypoints"] = torch.rand(4, 2, 2, generator=torch.Generator().manual_seed(0))
    head_in, aux = policy._encode(batch, train=True)
    obs = policy.normalizer.normalize(policy._observation_window(batch, train=True))
    torch.testing.assert_close(
        head_in[:, encoder.observation_dim :], obs[STATE][:, -1, 2:]
    )  # teacher forcing
    assert "hidden_state" in aux
    policy.eval()
    with torch.no_grad():
        decoded = encoder.hidden_state_head(
            encoder.features(obs, policy.conditioning_inputs.raw(batch, 4, policy.device))
        )
        torch.testing.assert_close(policy.encode(batch, train=False)[:, encoder.observation_dim :], decoded)
    with pytest.raises(PolicyError, match="set hidden_state_weight > 0 to train the decoder"):
        config(conditioning=("keypoints",), conditioning_as_state=True)


def test_hidden_state_loss_predicts_only_the_chosen_dims(fake_language: HashEmbedder) -> None:
    policy = make(
        kind="bc",
        camera=False,
        conditioning=("keypoints",),
        mask_state_dims={STATE: [2, 3]},
        hidden_state_weight=1.0,
        hidden_state_dims={STATE: [3]},
    )
    assert policy.model.obs_encoder.hidden_state_head.out_features == 1
    batch = window_batch(policy)
    base = policy(batch)["hidden_state"]
    batch[STATE][:, :, 2] += 10.0  # a masked dim the loss does not predict: no effect
    torch.testing.assert_close(policy(batch)["hidden_state"], base)
    batch[STATE][:, :, 3] += 10.0
    assert policy(batch)["hidden_state"] > base + 1.0
