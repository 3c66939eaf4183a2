"""Flow matching policy: a rectified-flow velocity field over normalized action chunks.

Training draws noise x0 ~ N(0, I), a time t and the chunk x1, builds ``x_t = (1 - (1 - sigma_min) t) x0 + t x1``
and regresses the constant velocity ``x1 - (1 - sigma_min) x0`` (masked MSE). Inference integrates the field from
noise with ``num_inference_steps`` Euler steps using the EMA weights. The observation encoder, conditioning, EMA
and checkpoints are :class:`~policies.chunk_policy.ChunkPolicy`; the network is the diffusion policy's UNet or
transformer, with ``t * time_scale`` as its step input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ember.policies.chunk_policy import ChunkPolicy
from ember.policies.denoisers import EncoderDenoiser
from ember.policies.flow.configuration_flow import FlowConfig
from ember.policies.normalize import Stats


class FlowModel(EncoderDenoiser):
    """Observation encoder + velocity network (``self.unet`` or ``self.transformer``)."""


class FlowPolicy(ChunkPolicy):
    """Rectified-flow action chunks, few-step Euler inference."""

    config_class = FlowConfig
    name = "flow"
    config: FlowConfig
    model: FlowModel

    def __init__(self, config: FlowConfig, dataset_stats: Stats | None = None) -> None:
        super().__init__(config, dataset_stats)

    def build_model(self) -> FlowModel:
        return FlowModel(self.config)

    def sample_time(self, n: int, device: torch.device) -> Tensor:
        """Training times in [0, 1] (0 = pure noise, 1 = data)."""
        kind = self.config.time_sampling
        if kind == "logit_normal":
            return torch.sigmoid(torch.randn(n, device=device))
        if kind == "beta":
            # pi0 samples 1 - Beta(1.5, 1) of its noise level: more weight on noisy times, never exactly 1.
            beta = torch.distributions.Beta(torch.tensor(1.5), torch.tensor(1.0)).sample((n,)).to(device)
            return (1.0 - beta) * 0.999
        return torch.rand(n, device=device)

    # ----------------------------------------------------------------------------------- training
    def action_error(self, global_cond: Tensor, actions: Tensor) -> Tensor:
        noise = torch.randn_like(actions)
        t = self.sample_time(actions.shape[0], actions.device)
        s = 1.0 - self.config.sigma_min
        tt = t[:, None, None]
        x_t = (1.0 - s * tt) * noise + tt * actions
        target = actions - s * noise
        pred = self.model.denoiser(x_t, t * self.config.time_scale, global_cond)
        return F.mse_loss(pred, target, reduction="none")

    # ---------------------------------------------------------------------------------- inference
    def example_inference_inputs(self, batch_size: int) -> dict[str, tuple[Tensor, ...]]:
        return self.model.example_denoiser_inputs(batch_size, torch.full((1,), 0.5, device=self.device))

    @torch.no_grad()
    def generate_actions(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """Euler-integrated chunk (B, horizon, A) in dataset units; seeded like the diffusion policy."""
        global_cond = self.encode(batch, train=False)
        device = self.device
        generator = self.make_generator(device, generator)
        b = global_cond.shape[0]
        x = torch.randn(
            (b, self.config.horizon, self.config.action_dim),
            generator=generator,
            device=device,
            dtype=global_cond.dtype,
        )
        n = self.config.num_inference_steps
        dt = 1.0 / n
        for i in range(n):
            t = torch.full((b,), i * dt * self.config.time_scale, device=device, dtype=x.dtype)
            x = x + dt * self.run_inference(self.model.denoiser_name, x, t, global_cond)
        if self.config.clip_sample:
            x = x.clamp(-1.0, 1.0)
        return self.unnormalize(x)
