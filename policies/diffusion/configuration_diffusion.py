"""``DiffusionConfig``: hyper-parameters of the diffusion policy, sized to train quickly on a CPU.

Defaults follow Diffusion Policy / LeRobot's ``DiffusionConfig`` but narrower (``down_dims`` 64-128-256
instead of 512-1024-2048) and with 100 training / 10 DDIM inference steps, which is what short
manipulation chunks need and what a laptop can train.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.config import PolicyConfig
from policies.errors import PolicyError

NOISE_SCHEDULERS = ("ddim", "dpm", "ddpm")
PREDICTION_TYPES = ("epsilon", "sample")
BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")


@dataclass
class DiffusionConfig(PolicyConfig):
    """Config of :class:`policies.diffusion.modeling_diffusion.DiffusionPolicy`."""

    type: str = "diffusion"

    # ---- temporal UNet
    down_dims: tuple[int, ...] = (64, 128, 256)
    """Channels per UNet level; the chunk is halved between levels, so horizon % 2**(len-1) == 0."""
    kernel_size: int = 5
    n_groups: int = 8
    """GroupNorm groups in every conv block (each of down_dims must be divisible by it)."""
    diffusion_step_embed_dim: int = 128
    res_blocks_per_level: int = 1
    """Residual FiLM blocks per UNet level (Diffusion Policy uses 2; 1 halves CPU training time)."""

    # ---- observation encoder
    state_encoder_dims: tuple[int, ...] = ()
    """Hidden sizes of an MLP on the (normalized) state + env-state; empty feeds them in raw (as DP does)."""
    vision_backbone: str = "resnet18"
    """A timm model name (random init, GroupNorm for BatchNorm) or ``"small_cnn"`` (4 conv layers, fast on CPU)."""
    pretrained_backbone_path: str | None = None
    """Local weights (safetensors or a torch state_dict) for the timm backbone; nothing is downloaded."""
    use_group_norm: bool = True
    """Replace BatchNorm by GroupNorm in the backbone (batch statistics hurt small-batch policy training)."""
    spatial_softmax_num_keypoints: int = 32
    crop_shape: tuple[int, int] | None = (84, 84)
    """Random crop while training, center crop otherwise; ``None`` keeps full images."""

    # ---- diffusion
    num_train_timesteps: int = 100
    num_inference_steps: int = 10
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    noise_scheduler: str = "ddim"
    """Inference sampler: ``ddim`` (deterministic), ``dpm`` (DPM-Solver++ multistep) or ``ddpm``."""
    ema_decay: float = 0.995
    """Max EMA decay (warmed up as (1+n)/(10+n)); EMA weights are what inference uses and what is saved.
    Set 0 to disable EMA."""

    # ---- optimizer presets (the train loop may use them)
    optimizer_lr: float = 1e-4
    optimizer_betas: tuple[float, float] = (0.95, 0.999)
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-6

    def validate(self) -> None:
        super().validate()
        if not self.down_dims:
            raise PolicyError("down_dims must list at least one level")
        bad = [d for d in self.down_dims if d % self.n_groups]
        if bad:
            raise PolicyError(f"down_dims {bad} are not divisible by n_groups={self.n_groups}")
        stride = 2 ** (len(self.down_dims) - 1)
        if self.horizon % stride:
            raise PolicyError(
                f"horizon {self.horizon} must be a multiple of {stride} (the UNet halves it "
                f"{len(self.down_dims) - 1} times); change horizon or use fewer down_dims"
            )
        if self.n_action_steps > self.horizon - self.n_obs_steps + 1:
            raise PolicyError(
                f"n_action_steps ({self.n_action_steps}) must be <= horizon - n_obs_steps + 1 "
                f"({self.horizon - self.n_obs_steps + 1}): actions are executed from index n_obs_steps-1"
            )
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
        if not 0.0 <= self.ema_decay < 1.0:
            raise PolicyError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.kernel_size % 2 == 0:
            raise PolicyError(f"kernel_size must be odd (same-length convs), got {self.kernel_size}")
        if self.res_blocks_per_level < 1:
            raise PolicyError("res_blocks_per_level must be >= 1")
        if self.pretrained_backbone_path and self.use_group_norm:
            raise PolicyError(
                "pretrained_backbone_path with use_group_norm=True would throw away the pretrained BatchNorm "
                "statistics; set use_group_norm=False to fine-tune a pretrained backbone"
            )
