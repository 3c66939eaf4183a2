"""Diffusion policy: forward and chunk shapes, learning the linear task, seeded sampling, the action queue and a
pretrained backbone (real modules, CPU, seeded). Checkpoints and normalization have their own files."""

from __future__ import annotations

from pathlib import Path

import linear_task
import numpy as np
import pytest
import torch
from diffusion_policy import CAMERA, SMALL, make
from linear_task import ACTION_DIM, STATE, STATE_DIM, linear_batch, train
from torch import Tensor, nn

from ember.policies import (
    PolicyError,
)
from ember.policies.diffusion.modeling_diffusion import DiffusionPolicy


# --------------------------------------------------------------------------------- forward and shapes
def test_forward_state_only_returns_finite_scalar_loss_and_chunk_shapes() -> None:
    policy = make()  # the default (CPU-sized) architecture
    cfg = policy.config
    batch = linear_batch(cfg, 4, torch.Generator().manual_seed(0))
    loss = policy(batch)["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in policy.model.unet.parameters())
    policy.eval()
    obs = {STATE: batch[STATE]}
    assert policy.generate_actions(obs).shape == (4, cfg.horizon, ACTION_DIM)
    assert policy.predict_action_chunk(obs).shape == (4, cfg.n_action_steps, ACTION_DIM)
    # a single observation step (no time dim) is accepted at inference and repeated over the window
    assert policy.predict_action_chunk({STATE: batch[STATE][:, -1]}).shape == (
        4,
        cfg.n_action_steps,
        ACTION_DIM,
    )


@pytest.mark.parametrize("backbone", ["resnet18", "small_cnn"])
def test_forward_with_one_camera(backbone: str) -> None:
    policy = make(
        camera=True,
        vision_backbone=backbone,
        normalization_mapping={"STATE": "min_max", "ACTION": "min_max", "VISUAL": "mean_std"},
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in policy.modules()), "BatchNorm must become GroupNorm"
    g = torch.Generator().manual_seed(0)
    batch = linear_batch(policy.config, 2, g)
    batch[CAMERA] = torch.rand(2, policy.config.n_obs_steps, 3, 96, 96, generator=g)
    loss = policy(batch)["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    encoder = policy.model.obs_encoder.image_encoder
    assert encoder is not None and any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.backbone.parameters()
    )
    policy.eval()
    # camera frames as they come from an env: uint8, H x W x 3
    frame = torch.randint(0, 256, (1, 96, 96, 3), dtype=torch.uint8)
    action = policy.select_action({STATE: torch.zeros(1, STATE_DIM), CAMERA: frame})
    assert action.shape == (1, ACTION_DIM) and torch.isfinite(action).all()


def test_loss_ignores_padded_action_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    # A UNet that predicts zero noise makes the epsilon loss the masked mean of noise**2.
    loss, batch, noise = linear_task.padded_loss_of_a_zero_network(make(**SMALL), monkeypatch)
    valid = ~batch["action_is_pad"]
    torch.testing.assert_close(loss, noise[valid].square().mean())


# ------------------------------------------------------------------------------------------- learning
def test_tiny_training_run_learns_a_linear_policy() -> None:
    policy = make(**SMALL)
    losses = train(policy, steps=400)
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert last < 0.3 * first, (first, last)
    error, baseline = linear_task.held_out_error(policy)
    assert error < 0.15 and error < 0.35 * baseline, (error, baseline)


def test_seeded_inference_is_reproducible() -> None:
    policy = make(**SMALL).eval()
    obs = {STATE: torch.rand(3, STATE_DIM)}
    torch.manual_seed(7)
    a = policy.predict_action_chunk(obs)
    torch.manual_seed(7)
    b = policy.predict_action_chunk(obs)
    torch.manual_seed(8)
    c = policy.predict_action_chunk(obs)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    # an explicit generator gives the same stream as seeding the global RNG does not matter then
    d = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(3))
    e = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(d, e, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside diffusers' DPM
@pytest.mark.parametrize("sampler", ["dpm", "ddpm"])
def test_other_samplers_run(sampler: str) -> None:
    policy = make(noise_scheduler=sampler, num_inference_steps=5, **SMALL).eval()
    chunk = policy.predict_action_chunk({STATE: torch.rand(2, STATE_DIM)})
    assert chunk.shape == (2, SMALL["n_action_steps"], ACTION_DIM) and torch.isfinite(chunk).all()
    assert chunk.abs().max() <= 1.0 + 1e-5  # clip_sample keeps normalized samples in [-1, 1] = stats range


# --------------------------------------------------------------------------------------- action queue
def test_select_action_replans_once_per_n_action_steps() -> None:
    policy = make(**SMALL).eval()
    n = policy.config.n_action_steps
    chunks: list[Tensor] = []
    original = policy.predict_action_chunk

    def counting(batch, generator=None):
        assert batch[STATE].shape[1] == policy.config.n_obs_steps  # history is stacked on dim 1
        chunks.append(original(batch, generator))
        return chunks[-1]

    policy.predict_action_chunk = counting  # type: ignore[method-assign]
    policy.reset()
    actions = [policy.select_action({STATE: torch.full((2, STATE_DIM), i / 10)}) for i in range(2 * n + 1)]
    assert len(chunks) == 3
    torch.testing.assert_close(torch.stack(actions[:n], dim=1), chunks[0])
    torch.testing.assert_close(torch.stack(actions[n : 2 * n], dim=1), chunks[1])
    policy.reset()
    policy.select_action({STATE: torch.zeros(2, STATE_DIM)})
    assert len(chunks) == 4, "reset() must drop queued actions"


def test_select_action_history_holds_the_last_n_obs_steps() -> None:
    policy = make(**SMALL, n_obs_steps=3).eval()
    seen: list[Tensor] = []
    policy.predict_action_chunk = lambda batch, generator=None: (  # type: ignore[method-assign]
        seen.append(batch[STATE].clone()) or torch.zeros(1, policy.config.n_action_steps, ACTION_DIM)
    )
    for i in range(policy.config.n_action_steps + 1):
        policy.select_action({STATE: torch.full((1, STATE_DIM), float(i))})
    assert seen[0][0, :, 0].tolist() == [0.0, 0.0, 0.0]  # first call: padded with copies of the first obs
    n = policy.config.n_action_steps
    assert seen[1][0, :, 0].tolist() == [n - 2.0, n - 1.0, float(n)]


def test_pretrained_backbone_is_read_from_a_local_file_only_at_first_build(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(3)
    reference = timm.create_model("resnet18", pretrained=False, num_classes=10)  # head is dropped on load
    weights = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(weights))
    with pytest.raises(PolicyError, match="use_group_norm=False"):
        make(camera=True, pretrained_backbone_path=str(weights))
    policy = make(camera=True, pretrained_backbone_path=str(weights), use_group_norm=False)
    backbone = policy.model.obs_encoder.image_encoder.backbone
    torch.testing.assert_close(backbone.conv1.weight, reference.conv1.weight)

    policy.save_pretrained(tmp_path / "ckpt")
    weights.unlink()  # a deployment machine need not have the init-only file
    loaded = DiffusionPolicy.from_pretrained(tmp_path / "ckpt")
    torch.testing.assert_close(
        loaded.model.obs_encoder.image_encoder.backbone.conv1.weight, reference.conv1.weight
    )
    with pytest.raises(PolicyError, match="does not exist"):
        make(camera=True, pretrained_backbone_path=str(weights), use_group_norm=False)


def test_pointwise_conv_is_a_1x1_conv_and_hands_back_a_contiguous_input_gradient() -> None:
    """The matmul 1x1 conv equals nn.Conv1d in value and gradients, and its input gradient is contiguous: a
    transposed one summed into the residual block's input slowed the previous Mish's backward 10x."""
    from ember.policies.diffusion.unet import PointwiseConv1d

    torch.manual_seed(0)
    pointwise, conv = PointwiseConv1d(12, 24), torch.nn.Conv1d(12, 24, 1)
    with torch.no_grad():
        conv.weight.copy_(pointwise.weight[:, :, None])
        conv.bias.copy_(pointwise.bias)
    x1 = torch.randn(4, 12, 8, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    grad_out = torch.randn(4, 24, 8)
    y1, y2 = pointwise(x1), conv(x2)
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    y1.backward(grad_out)
    y2.backward(grad_out)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pointwise.weight.grad, conv.weight.grad[:, :, 0], rtol=1e-5, atol=1e-5)
    assert x1.grad.is_contiguous()
    with torch.inference_mode():  # inference takes the plain path (traced and frozen for eval and deploy)
        torch.testing.assert_close(pointwise(x1.detach()), y2.detach(), rtol=1e-5, atol=1e-6)
