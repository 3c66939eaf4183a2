"""Diffusion Policy: denoise an action chunk conditioned on a short observation history.

Training adds DDPM noise to normalized action chunks and regresses the noise (epsilon) with a conditional
1-D UNet or a transformer; inference runs ``num_inference_steps`` of DDIM (or DPM-Solver++, or DDPM) from
Gaussian noise, with the EMA weights. Everything but the noise schedule (windows, conditioning, encoder, EMA,
checkpoints) is :class:`~policies.chunk_policy.ChunkPolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import Tensor

from ember.policies.chunk_policy import ChunkPolicy
from ember.policies.denoisers import EncoderDenoiser
from ember.policies.diffusion.configuration_diffusion import DiffusionConfig
from ember.policies.encoder import ObservationEncoder
from ember.policies.normalize import Stats

DiffusionObservationEncoder = ObservationEncoder
"""The shared encoder under its former name."""


class DiffusionModel(EncoderDenoiser):
    """Observation encoder + noise-predicting network (``self.unet`` or ``self.transformer``)."""


class DiffusionPolicy(ChunkPolicy):
    """Diffusion Policy with DDPM training and DDIM/DPM inference over a UNet or transformer denoiser."""

    config_class = DiffusionConfig
    name = "diffusion"
    config: DiffusionConfig
    model: DiffusionModel

    def __init__(self, config: DiffusionConfig, dataset_stats: Stats | None = None) -> None:
        super().__init__(config, dataset_stats)
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            clip_sample=config.clip_sample,
            clip_sample_range=config.clip_sample_range,
            prediction_type=config.prediction_type,
        )
        self.inference_scheduler = self._make_inference_scheduler()

    def build_model(self) -> DiffusionModel:
        return DiffusionModel(self.config)

    def _make_inference_scheduler(self) -> Any:
        """The sampler, built from the training scheduler's betas so both agree on the noise levels."""
        cfg = self.config
        betas = self.noise_scheduler.betas.numpy()
        common = dict(
            num_train_timesteps=cfg.num_train_timesteps,
            trained_betas=betas,
            prediction_type=cfg.prediction_type,
        )
        if cfg.noise_scheduler == "ddim":
            return DDIMScheduler(
                **common,
                clip_sample=cfg.clip_sample,
                clip_sample_range=cfg.clip_sample_range,
                set_alpha_to_one=True,
            )
        if cfg.noise_scheduler == "dpm":
            return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++")
        return DDPMScheduler(**common, clip_sample=cfg.clip_sample, clip_sample_range=cfg.clip_sample_range)

    # ----------------------------------------------------------------------------------- training
    def action_error(self, global_cond: Tensor, actions: Tensor) -> Tensor:
        """Epsilon (or sample) squared error of one random diffusion step per chunk."""
        noise = torch.randn_like(actions)
        t = torch.randint(0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        noisy = self.noise_scheduler.add_noise(actions, noise, t)
        pred = self.model.denoiser(noisy, t, global_cond)
        target = noise if self.config.prediction_type == "epsilon" else actions
        return F.mse_loss(pred, target, reduction="none")

    # ---------------------------------------------------------------------------------- inference
    def example_inference_inputs(self, batch_size: int) -> dict[str, tuple[Tensor, ...]]:
        return self.model.example_denoiser_inputs(
            batch_size, torch.ones(1, dtype=torch.long, device=self.device)
        )

    @torch.no_grad()
    def generate_actions(self, batch: Mapping[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """The full denoised chunk (B, horizon, A) in dataset units.

        Without a ``generator`` one is seeded from torch's global RNG, so ``torch.manual_seed`` makes the
        result reproducible on any device.
        """
        global_cond = self.encode(batch, train=False)
        device = self.device
        generator = self.make_generator(device, generator)
        b = global_cond.shape[0]
        sample = torch.randn(
            (b, self.config.horizon, self.config.action_dim),
            generator=generator,
            device=device,
            dtype=global_cond.dtype,
        )
        scheduler = self.inference_scheduler
        scheduler.set_timesteps(self.config.num_inference_steps, device=device)
        for t in scheduler.timesteps:
            steps = torch.full((b,), int(t), device=device, dtype=torch.long)
            model_output = self.run_inference(self.model.denoiser_name, sample, steps, global_cond)
            sample = scheduler.step(model_output, t, sample, generator=generator).prev_sample
        if self.config.clip_sample:
            sample = sample.clamp(-self.config.clip_sample_range, self.config.clip_sample_range)
        return self.unnormalize(sample)
