"""Builds the chunk network a :class:`~policies.denoiser_config.DenoiserConfig` asks for."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ember.policies.denoiser_config import DenoiserConfig
from ember.policies.diffusion.unet import ConditionalUnet1D
from ember.policies.encoder import ObservationEncoder
from ember.policies.transformer import ChunkTransformer


def build_denoiser(config: DenoiserConfig, global_cond_dim: int) -> nn.Module:
    """(B, T, A) noisy chunk, (B,) step/time, (B, G) conditioning -> (B, T, A)."""
    if config.denoiser.network == "transformer":
        return ChunkTransformer(
            action_dim=config.action_dim,
            horizon=config.horizon,
            global_cond_dim=global_cond_dim,
            dim=config.denoiser.transformer_dim,
            layers=config.denoiser.transformer_layers,
            heads=config.denoiser.transformer_heads,
            dropout=config.denoiser.transformer_dropout,
            n_cond_tokens=config.n_obs_steps,
        )
    return ConditionalUnet1D(
        action_dim=config.action_dim,
        global_cond_dim=global_cond_dim,
        down_dims=tuple(config.denoiser.down_dims),
        kernel_size=config.denoiser.kernel_size,
        n_groups=config.denoiser.n_groups,
        step_embed_dim=config.denoiser.diffusion_step_embed_dim,
        blocks_per_level=config.denoiser.res_blocks_per_level,
    )


class EncoderDenoiser(nn.Module):
    """The trainable part of an iterative head (and what EMA averages): the shared observation encoder and the
    chunk network, ``self.unet`` (FiLM 1-D UNet) or ``self.transformer``; ``denoiser_name`` says which, so
    checkpoints name their weights after the architecture."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.obs_encoder = ObservationEncoder(config)
        self.denoiser_name = "transformer" if config.denoiser.network == "transformer" else "unet"
        self.add_module(self.denoiser_name, build_denoiser(config, self.obs_encoder.output_dim))
        self.horizon, self.action_dim = config.horizon, config.action_dim

    @property
    def denoiser(self) -> nn.Module:
        return getattr(self, self.denoiser_name)

    def example_denoiser_inputs(self, batch_size: int, step: Tensor) -> dict[str, tuple[Tensor, ...]]:
        """Arguments of one denoiser call (what :meth:`ChunkPolicy.freeze_for_inference` traces); ``step`` is one
        diffusion step index or flow time, broadcast over the batch."""
        device = step.device
        return {
            self.denoiser_name: (
                torch.zeros(batch_size, self.horizon, self.action_dim, device=device),
                step.expand(batch_size).contiguous(),
                torch.zeros(batch_size, self.obs_encoder.output_dim, device=device),
            )
        }
