"""``DiffusionConfig``: hyper-parameters of the diffusion policy, sized to train quickly on a CPU.

Defaults follow Diffusion Policy / LeRobot's ``DiffusionConfig`` but narrower (``down_dims`` 64-128-256
instead of 512-1024-2048) and with 100 training / 10 DDIM inference steps, which is what short
manipulation chunks need and what a laptop can train. The observation encoder, conditioning, EMA and the
denoising network (UNet or transformer) are shared with flow matching (see ``DenoiserConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.policies.denoiser_config import DenoiserConfig
from ember.policies.errors import PolicyError

NOISE_SCHEDULERS = ("ddim", "dpm", "ddpm")
PREDICTION_TYPES = ("epsilon", "sample")
BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")


@dataclass
class DiffusionConfig(DenoiserConfig):
    """Config of :class:`ember.policies.diffusion.modeling_diffusion.DiffusionPolicy`."""

    type: str = "diffusion"

    num_train_timesteps: int = 100
    num_inference_steps: int = 10
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    noise_scheduler: str = "ddim"
    """Inference sampler: ``ddim`` (deterministic), ``dpm`` (DPM-Solver++ multistep) or ``ddpm``."""

    def validate(self) -> None:
        super().validate()
        if self.noise_scheduler not in NOISE_SCHEDULERS:
            raise PolicyError(
                f"noise_scheduler {self.noise_scheduler!r} is unknown; use one of {NOISE_SCHEDULERS}"
            )
        if self.prediction_type not in PREDICTION_TYPES:
            raise PolicyError(
                f"prediction_type {self.prediction_type!r} is unknown; use one of {PREDICTION_TYPES}"
            )
        if self.beta_schedule not in BETA_SCHEDULES:
            raise PolicyError(f"beta_schedule {self.beta_schedule!r} is unknown; use one of {BETA_SCHEDULES}")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise PolicyError(
                f"num_inference_steps ({self.num_inference_steps}) must be in [1, num_train_timesteps="
                f"{self.num_train_timesteps}]"
            )
