"""``FlowConfig``: rectified-flow action chunks with the diffusion policy's encoder and denoising network.

Rectified flow (Liu et al., 2022; the action expert of pi0) learns the straight-line velocity from noise to data, so
a handful of Euler steps (default 5) integrate it where DDPM needs 100 and DDIM ~10: the cheapest generative head
per action chunk, which is what a CPU control loop needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.policies.denoiser_config import DenoiserConfig
from ember.policies.errors import PolicyError

TIME_SAMPLINGS = ("uniform", "logit_normal", "beta")


@dataclass
class FlowConfig(DenoiserConfig):
    """Config of :class:`ember.policies.flow.modeling_flow.FlowPolicy`."""

    type: str = "flow"

    num_inference_steps: int = 5
    """Euler steps from noise (t=0) to actions (t=1)."""
    time_sampling: str = "beta"
    """Training times: ``uniform``, ``logit_normal`` (SD3) or ``beta`` (pi0: Beta(1.5, 1) on the noisy side)."""
    time_scale: float = 100.0
    """t in [0, 1] is fed to the network's step embedding as ``t * time_scale`` (the range DDPM steps use)."""
    clip_sample: bool = True
    """Clamp the integrated chunk to the normalized action range [-1, 1]."""
    sigma_min: float = 0.0
    """Noise left at t=1 (0 = exact rectified flow)."""

    def validate(self) -> None:
        super().validate()
        if self.num_inference_steps < 1:
            raise PolicyError(f"num_inference_steps must be >= 1, got {self.num_inference_steps}")
        if self.time_sampling not in TIME_SAMPLINGS:
            raise PolicyError(f"time_sampling {self.time_sampling!r} is unknown; use one of {TIME_SAMPLINGS}")
        if self.time_scale <= 0:
            raise PolicyError(f"time_scale must be > 0, got {self.time_scale}")
        if not 0.0 <= self.sigma_min < 1.0:
            raise PolicyError(f"sigma_min must be in [0, 1), got {self.sigma_min}")
