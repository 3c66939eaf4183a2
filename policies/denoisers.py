"""Builds the chunk network a :class:`~policies.denoiser_config.DenoiserConfig` asks for."""

from __future__ import annotations

from torch import nn

from policies.denoiser_config import DenoiserConfig
from policies.diffusion.unet import ConditionalUnet1D
from policies.transformer import ChunkTransformer


def build_denoiser(config: DenoiserConfig, global_cond_dim: int) -> nn.Module:
    """(B, T, A) noisy chunk, (B,) step/time, (B, G) conditioning -> (B, T, A)."""
    if config.denoiser == "transformer":
        return ChunkTransformer(
            action_dim=config.action_dim,
            horizon=config.horizon,
            global_cond_dim=global_cond_dim,
            dim=config.transformer_dim,
            layers=config.transformer_layers,
            heads=config.transformer_heads,
            dropout=config.transformer_dropout,
            n_cond_tokens=config.n_obs_steps,
        )
    return ConditionalUnet1D(
        action_dim=config.action_dim,
        global_cond_dim=global_cond_dim,
        down_dims=tuple(config.down_dims),
        kernel_size=config.kernel_size,
        n_groups=config.n_groups,
        step_embed_dim=config.diffusion_step_embed_dim,
        blocks_per_level=config.res_blocks_per_level,
    )
