"""BC policy: the encoded observation regresses the normalized action chunk with an L1 (or MSE) loss.

No noise and no sampling: one forward pass per chunk, deterministic. Windows, conditioning, encoder, EMA and
checkpoints are :class:`~policies.chunk_policy.ChunkPolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ember.policies.bc.configuration_bc import BCConfig
from ember.policies.chunk_policy import ChunkPolicy
from ember.policies.encoder import ObservationEncoder
from ember.policies.normalize import Stats
from ember.policies.transformer import ChunkTransformer


class MLPChunkHead(nn.Module):
    """(B, G) -> (B, horizon, A) through Linear + Mish + Dropout layers."""

    def __init__(
        self, in_dim: int, hidden: tuple[int, ...], horizon: int, action_dim: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in zip((in_dim, *hidden[:-1]), hidden, strict=True):
            layers += [nn.Linear(cin, cout), nn.Mish(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden[-1], horizon * action_dim))
        self.net = nn.Sequential(*layers)
        self.shape = (horizon, action_dim)

    def forward(self, sample: Tensor | None, timestep: Tensor | None, global_cond: Tensor) -> Tensor:
        return self.net(global_cond).reshape(-1, *self.shape)


class BCModel(nn.Module):
    """Observation encoder + chunk head (``self.head``)."""

    def __init__(self, config: BCConfig) -> None:
        super().__init__()
        self.obs_encoder = ObservationEncoder(config)
        cond = self.obs_encoder.output_dim
        if config.head == "transformer":
            self.head: nn.Module = ChunkTransformer(
                config.action_dim,
                config.horizon,
                cond,
                dim=config.transformer_dim,
                layers=config.transformer_layers,
                heads=config.transformer_heads,
                dropout=config.dropout,
                n_cond_tokens=config.n_obs_steps,
                timestep=False,
            )
        else:
            self.head = MLPChunkHead(
                cond, tuple(config.hidden_dims), config.horizon, config.action_dim, config.dropout
            )


class BCPolicy(ChunkPolicy):
    """Deterministic chunk regression; the baseline the generative heads must beat."""

    config_class = BCConfig
    name = "bc"
    config: BCConfig
    model: BCModel

    def __init__(self, config: BCConfig, dataset_stats: Stats | None = None) -> None:
        super().__init__(config, dataset_stats)

    def build_model(self) -> BCModel:
        return BCModel(self.config)

    def action_error(self, global_cond: Tensor, actions: Tensor) -> Tensor:
        pred = self.model.head(None, None, global_cond)
        if self.config.loss == "mse":
            return F.mse_loss(pred, actions, reduction="none")
        return F.l1_loss(pred, actions, reduction="none")

    @torch.no_grad()
    def generate_actions(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """The regressed chunk (B, horizon, A) in dataset units (``generator`` is accepted and unused)."""
        global_cond = self.encode(batch, train=False)
        pred = self.run_inference("head", None, None, global_cond)
        return self.unnormalize(pred)
