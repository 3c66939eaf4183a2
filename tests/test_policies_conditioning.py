"""Conditioning inputs of the policies: shapes for every kind and fusion, checkpoints, image backbones and the
errors a user can hit (CPU, seeded). Language, state masking and conditioning images have their own files."""

from __future__ import annotations

from pathlib import Path

import conditioning_policy
import numpy as np
import pytest
import torch
from conditioning_policy import (
    ACTION_DIM,
    CAMERA,
    SIZE,
    STATE,
    STATE_DIM,
    HashEmbedder,
    config,
    make,
    observation,
    prepared,
    stats,
    window_batch,
)

from ember.policies import PolicyError, load_policy, make_policy, make_policy_config
from ember.policies.conditioning.keys import CONDITIONING_KINDS, IMAGE_CHANNELS

fake_language = conditioning_policy.fake_language  # the fixture: a fresh HashEmbedder for each test


@pytest.mark.parametrize("fusion", ["early", "late"])
@pytest.mark.parametrize("kind", CONDITIONING_KINDS)
def test_every_conditioning_trains_and_acts(kind: str, fusion: str, fake_language: HashEmbedder) -> None:
    policy = make(conditioning=(kind,), conditioning_fusion=fusion)
    encoder = policy.model.obs_encoder
    if kind in IMAGE_CHANNELS:
        early = fusion == "early"
        assert (encoder.extra_channels == IMAGE_CHANNELS[kind]) == early
        assert (kind in encoder.cond_images) == (not early)
    loss = policy(window_batch(policy))["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    trainable = [n for n, p in policy.model.obs_encoder.named_parameters() if p.grad is None]
    assert not trainable, f"conditioning parameters got no gradient: {trainable[:4]}"
    policy.eval()
    assert policy.select_action(observation(policy)).shape == (4, ACTION_DIM)


@pytest.mark.parametrize("policy_type", ["diffusion", "flow", "bc"])
def test_all_conditionings_together_without_a_camera(policy_type: str, fake_language: HashEmbedder) -> None:
    policy = make(kind=policy_type, camera=False, conditioning=CONDITIONING_KINDS)
    assert policy.model.obs_encoder.extra_channels == 0  # no camera to align with: every image is late-fused
    loss = policy(window_batch(policy))["loss"]
    assert torch.isfinite(loss)
    policy.eval()
    chunk = policy.predict_action_chunk(prepared(policy, observation(policy)))
    assert chunk.shape == (4, policy.config.n_action_steps, ACTION_DIM)


def test_conditioning_changes_the_action(fake_language: HashEmbedder) -> None:
    policy = make(kind="bc", conditioning=("trajectory_sketch", "keypoints")).eval()
    obs = prepared(policy, observation(policy, 1))
    a = policy.predict_action_chunk(obs)
    obs["conditioning.keypoints"] = obs["conditioning.keypoints"] * 0 + 0.9
    obs["conditioning.trajectory_sketch"] = np.zeros_like(obs["conditioning.trajectory_sketch"])
    assert not torch.allclose(a, policy.predict_action_chunk(obs))


def test_missing_conditioning_is_a_clear_error(fake_language: HashEmbedder) -> None:
    policy = make(conditioning=("goal_sketch",)).eval()
    obs = observation(policy)
    del obs["conditioning.goal_sketch"]
    with pytest.raises(
        PolicyError, match=r"missing 'conditioning.goal_sketch'.*conditioned on \['goal_sketch'\]"
    ):
        policy.select_action(obs)
    language = make(conditioning=("language",)).eval()
    obs = observation(language)
    del obs["task"]
    with pytest.raises(PolicyError, match=r"missing 'task'.*pass the instruction as 'task'"):
        language.select_action(obs)


def test_bad_conditioning_shapes_say_what_to_do(fake_language: HashEmbedder) -> None:
    policy = make(conditioning=("keypoints", "trajectory_sketch")).eval()
    obs = observation(policy)
    obs["conditioning.keypoints"] = np.zeros((4, 3, 2), np.float32)
    with pytest.raises(PolicyError, match="holds 3 points.*num_keypoints=2"):
        policy.select_action(obs)
    policy.reset()
    obs = observation(policy)
    obs["conditioning.trajectory_sketch"] = np.zeros((4, 16, 16, 3), np.uint8)
    with pytest.raises(PolicyError, match=r"is \(16, 16\) pixels but camera .* is \(32, 32\)"):
        policy.select_action(obs)
    with pytest.raises(PolicyError, match="conditioning .*'sketch'.* is unknown"):
        config(conditioning=("sketch",))
    with pytest.raises(PolicyError, match="conditioning.camera 'wrist' is not an input camera"):
        make(conditioning=("goal_sketch",), conditioning_camera="wrist")


@pytest.mark.parametrize("policy_type", ["diffusion", "flow", "bc"])
def test_conditioned_checkpoint_round_trip_gives_identical_actions(
    tmp_path: Path, policy_type: str, fake_language: HashEmbedder
) -> None:
    policy = make(kind=policy_type, conditioning=("language", "goal_sketch", "keypoints"))
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-3)
    for _ in range(3):
        loss = policy(window_batch(policy))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval().save_pretrained(tmp_path / "ckpt")
    obs = prepared(policy, observation(policy))
    torch.manual_seed(4)
    expected = policy.predict_action_chunk(obs)
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.config.conditioning.kinds == ("language", "goal_sketch", "keypoints")
    torch.manual_seed(4)
    torch.testing.assert_close(loaded.predict_action_chunk(obs), expected, rtol=0, atol=0)


@pytest.mark.parametrize("per_camera", [False, True])
def test_timm_backbone_per_camera_with_average_pooling(per_camera: bool) -> None:
    inputs = {
        STATE: {"shape": [STATE_DIM]},
        CAMERA: {"shape": [3, SIZE, SIZE]},
        "observation.images.wrist": {"shape": [3, SIZE, SIZE]},
        "observation.depth.front": {"shape": [1, SIZE, SIZE]},
    }
    cfg = make_policy_config(
        "bc",
        input_features=inputs,
        output_features={"action": {"shape": [ACTION_DIM]}},
        horizon=8,
        n_action_steps=4,
        hidden_dims=(32,),
        vision_backbone="resnet18",
        image_pooling="avg",
        crop_shape=None,
        vision_per_camera=per_camera,
    )
    policy = make_policy(cfg, dataset_stats=stats())
    encoder = policy.model.obs_encoder
    assert (
        encoder.image_encoder is None and len(encoder.image_encoders) == 3
    )  # RGB and depth differ: always own
    g = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, cfg.n_obs_steps, *v["shape"], generator=g) for k, v in inputs.items()}
    batch.update(action=torch.zeros(2, 8, ACTION_DIM))
    assert torch.isfinite(policy(batch)["loss"])
