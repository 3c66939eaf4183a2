"""Conditioning images: stacked fusion of a sketch beside the initial frame, photo jitter in training only, and
colour-only (chroma) frames (CPU, seeded)."""

from __future__ import annotations

import conditioning_policy
import pytest
import torch
from conditioning_policy import (
    ACTION_DIM,
    SIZE,
    HashEmbedder,
    config,
    make,
    observation,
    prepared,
    window_batch,
)

from ember.policies import PolicyError

fake_language = conditioning_policy.fake_language  # the fixture: a fresh HashEmbedder for each test


def test_stacked_fusion_reads_a_goal_sketch_beside_the_initial_frame(fake_language: HashEmbedder) -> None:
    policy = make(
        kind="flow",
        camera=False,
        conditioning=("goal_sketch", "initial_image", "keypoints"),
        conditioning_fusion="stacked",
    )
    encoder = policy.model.obs_encoder
    assert list(encoder.cond_images) == ["stacked"] and encoder.stacked_kinds == [
        "goal_sketch",
        "initial_image",
    ]
    assert encoder.cond_images["stacked"].backbone[0].in_channels == 1 + 3
    assert torch.isfinite(policy(window_batch(policy))["loss"])
    policy.eval()
    assert policy.select_action(observation(policy)).shape == (4, ACTION_DIM)


def test_photo_jitter_changes_camera_frames_only_and_only_in_training(fake_language: HashEmbedder) -> None:
    from types import SimpleNamespace

    from ember.policies.conditioning.inputs import conditioning_transforms

    inference, training = conditioning_transforms(SimpleNamespace(chroma=False, photo_jitter=0.3))
    assert len(inference) == 0
    g = torch.Generator().manual_seed(0)
    cond = {
        "initial_image": torch.rand(8, 3, SIZE, SIZE, generator=g),
        "goal_sketch": torch.rand(8, 1, SIZE, SIZE, generator=g),
    }
    torch.manual_seed(0)
    out = training(cond)
    assert out["goal_sketch"] is cond["goal_sketch"]  # drawings keep their strokes
    change = (out["initial_image"] - cond["initial_image"]).abs().mean(dim=(1, 2, 3))
    assert (change > 1e-3).all() and 0.0 <= out["initial_image"].min() and out["initial_image"].max() <= 1.0
    ratio = out["initial_image"].mean(dim=(1, 2, 3)) / cond["initial_image"].mean(dim=(1, 2, 3))
    assert ratio.min() < 0.95 and ratio.max() > 1.05  # brightness differs per sample
    policy = make(
        kind="bc",
        camera=False,
        conditioning=("goal_sketch", "initial_image"),
        conditioning_fusion="stacked",
        conditioning_photo_jitter=0.3,
    ).eval()
    obs = prepared(policy, observation(policy))
    with torch.no_grad():
        torch.testing.assert_close(policy.encode(obs, train=False), policy.encode(obs, train=False))
    with pytest.raises(PolicyError, match=r"conditioning.photo_jitter must be in \[0, 1\)"):
        config(conditioning_photo_jitter=1.5)


def test_colour_only_conditioning_reads_frames_as_chroma_in_training_and_inference(
    fake_language: HashEmbedder,
) -> None:
    from ember.eval import ConditioningPlan

    policy = make(
        kind="bc",
        camera=False,
        conditioning=("goal_sketch", "initial_image"),
        conditioning_fusion="stacked",
        conditioning_chroma=True,
    )
    batch = window_batch(policy)
    batch["conditioning.initial_image"] = torch.full((4, 3, SIZE, SIZE), 0.3)  # grey: no colour
    cond = policy.conditioning_inputs.raw(batch, 4, policy.device)
    seen = {}
    original = policy.model.obs_encoder.features

    def spy(obs, cond=None, task=None):
        seen.update(cond)
        return original(obs, cond, task)

    policy.model.obs_encoder.features = spy
    policy._encode(batch, train=True)
    torch.testing.assert_close(seen["initial_image"], torch.full_like(cond["initial_image"], 0.5))
    torch.testing.assert_close(seen["goal_sketch"], cond["goal_sketch"])  # strokes are not colours
    seen.clear()
    with torch.no_grad():
        policy.eval().encode(batch, train=False)
    torch.testing.assert_close(seen["initial_image"], torch.full_like(cond["initial_image"], 0.5))
    assert ConditioningPlan.of(policy).sketch_source == "chroma"
    assert (
        ConditioningPlan.of(make(kind="bc", camera=False, conditioning=("goal_sketch",))).sketch_source
        == "rgb"
    )


def test_a_uint8_colour_drawing_for_a_one_channel_sketch_is_scaled_to_unit_range() -> None:
    from ember.policies.conditioning.inputs import image_batch

    drawing = torch.zeros(2, 8, 8, 3, dtype=torch.uint8)  # channels last, as a camera or a PNG gives it
    drawing[:, 2, 3, 0] = 255
    x = image_batch(drawing, 1, "goal_sketch")
    assert x.shape == (2, 1, 8, 8) and x.dtype == torch.float32
    assert float(x.max()) == 1.0 and float(x[0, 0, 2, 3]) == 1.0 and float(x.sum()) == 2.0
