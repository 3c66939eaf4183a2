"""A transformer over action chunks, for the generative heads (denoiser) and BC (chunk decoder).

Diffusion Policy's transformer variant (DP-T) predicts noise for action tokens that attend to each other and, by
cross-attention, to conditioning tokens. Here the conditioning tokens are the diffusion step / flow time (absent in
BC) and the encoded observation split into ``n_cond_tokens`` slices, so attention can pick what it needs from the
observation window instead of seeing one FiLM vector. Pre-norm layers train stably without warm-up tricks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ember.policies.diffusion.unet import SinusoidalStepEmbedding


class ChunkTransformer(nn.Module):
    """(B, T, A) chunk (noisy actions, or None for BC's learned queries), (B,) step, (B, G) cond -> (B, T, A)."""

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        global_cond_dim: int,
        dim: int = 128,
        layers: int = 4,
        heads: int = 4,
        dropout: float = 0.1,
        n_cond_tokens: int = 2,
        timestep: bool = True,
    ) -> None:
        super().__init__()
        self.horizon = horizon
        self.n_cond_tokens = n_cond_tokens
        # a denoiser embeds the noisy chunk; BC (no timestep, no input chunk) starts from learned queries
        self.input = nn.Linear(action_dim, dim) if timestep else None
        self.queries = None if timestep else nn.Parameter(torch.zeros(1, horizon, dim))
        self.position = nn.Parameter(torch.randn(1, horizon, dim) * 0.02)
        self.cond = nn.Linear(global_cond_dim, n_cond_tokens * dim)
        self.cond_position = nn.Parameter(torch.randn(1, n_cond_tokens + int(timestep), dim) * 0.02)
        self.step_encoder = (
            nn.Sequential(SinusoidalStepEmbedding(dim), nn.Linear(dim, dim), nn.Mish(), nn.Linear(dim, dim))
            if timestep
            else None
        )
        layer = nn.TransformerDecoderLayer(
            dim,
            heads,
            dim_feedforward=4 * dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, action_dim)

    def forward(self, sample: Tensor | None, timestep: Tensor | None, global_cond: Tensor) -> Tensor:
        b = global_cond.shape[0]
        memory = self.cond(global_cond).reshape(b, self.n_cond_tokens, -1)
        if self.step_encoder is not None:
            assert timestep is not None, "this transformer was built with timestep=True"
            memory = torch.cat([self.step_encoder(timestep)[:, None], memory], dim=1)
        memory = memory + self.cond_position
        if self.input is not None:
            assert sample is not None, "a denoising transformer needs the noisy chunk"
            x = self.input(sample)
        else:
            assert self.queries is not None
            x = self.queries.expand(b, -1, -1)
        x = self.decoder(x + self.position, memory)
        return self.head(self.norm(x))
