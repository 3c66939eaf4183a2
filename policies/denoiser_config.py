"""``DenoiserConfig``: the action-chunk network shared by diffusion and flow matching (UNet or transformer).

Both generative heads learn a field over noisy action chunks conditioned on the encoded observation; which network
computes it is a choice orthogonal to how it is trained (DDPM noise or rectified-flow velocity), so its fields
live once here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ember.policies.config import SubConfig
from ember.policies.encoder_config import VisuomotorConfig
from ember.policies.errors import PolicyError

DENOISERS = ("unet", "transformer")


@dataclass
class DenoiserNetworkConfig(SubConfig):
    """Network of the generative heads: a FiLM 1-D temporal UNet or a transformer (Diffusion Policy's C and T)."""

    network: str = "unet"
    """``unet`` (FiLM-conditioned 1-D convolutions; the paper's most robust choice) or ``transformer``
    (action tokens attend to themselves and to time + observation tokens; DP-T style)."""

    # ---- temporal UNet
    down_dims: tuple[int, ...] = (64, 128, 256)
    """Channels per UNet level; the chunk is halved between levels, so horizon % 2**(len-1) == 0."""
    kernel_size: int = 5
    n_groups: int = 8
    """GroupNorm groups in every conv block (each of down_dims must be divisible by it)."""
    diffusion_step_embed_dim: int = 128
    res_blocks_per_level: int = 1
    """Residual FiLM blocks per UNet level (Diffusion Policy uses 2; 1 halves CPU training time)."""

    # ---- transformer
    transformer_dim: int = 128
    transformer_layers: int = 4
    transformer_heads: int = 4
    transformer_dropout: float = 0.1

    def validate(self) -> None:
        if self.network not in DENOISERS:
            raise PolicyError(f"denoiser {self.network!r} is unknown; use one of {DENOISERS}")
        if self.network == "unet":
            if not self.down_dims:
                raise PolicyError("down_dims must list at least one level")
            bad = [d for d in self.down_dims if d % self.n_groups]
            if bad:
                raise PolicyError(f"down_dims {bad} are not divisible by n_groups={self.n_groups}")
            if self.kernel_size % 2 == 0:
                raise PolicyError(f"kernel_size must be odd (same-length convs), got {self.kernel_size}")
            if self.res_blocks_per_level < 1:
                raise PolicyError("res_blocks_per_level must be >= 1")
        elif self.transformer_dim % self.transformer_heads:
            raise PolicyError(
                f"transformer_dim ({self.transformer_dim}) must be divisible by transformer_heads "
                f"({self.transformer_heads})"
            )
        if not 0.0 <= self.transformer_dropout < 1.0:
            raise PolicyError(f"transformer_dropout must be in [0, 1), got {self.transformer_dropout}")


_NETWORK_FIELDS = (
    "down_dims",
    "kernel_size",
    "n_groups",
    "diffusion_step_embed_dim",
    "res_blocks_per_level",
    "transformer_dim",
    "transformer_layers",
    "transformer_heads",
    "transformer_dropout",
)


@dataclass
class DenoiserConfig(VisuomotorConfig):
    """What diffusion and flow share: the encoder and conditioning, plus the denoising network (``denoiser``)."""

    LEGACY_PATHS: ClassVar[dict[str, str]] = {
        "denoiser": "denoiser.network",
        **{f: f"denoiser.{f}" for f in _NETWORK_FIELDS},
    }

    denoiser: DenoiserNetworkConfig = field(default_factory=DenoiserNetworkConfig)

    def validate(self) -> None:
        super().validate()
        net = self.denoiser
        if net.network == "unet":
            stride = 2 ** (len(net.down_dims) - 1)
            if self.horizon % stride:
                raise PolicyError(
                    f"horizon {self.horizon} must be a multiple of {stride} (the UNet halves it "
                    f"{len(net.down_dims) - 1} times); change horizon or use fewer denoiser.down_dims"
                )
