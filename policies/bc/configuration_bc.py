"""``BCConfig``: the deterministic baseline, an MLP or transformer that regresses the whole chunk with L1.

Same observation encoder, conditioning, chunking and EMA as diffusion and flow, so a comparison measures the
action head only: one Gaussian-free regression (L1, as ACT and OpenVLA-OFT use) against generative heads that can
represent several modes (push the T from the left or from the right).
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.policies.encoder_config import VisuomotorConfig
from ember.policies.errors import PolicyError

BC_HEADS = ("mlp", "transformer")
BC_LOSSES = ("l1", "mse")


@dataclass
class BCConfig(VisuomotorConfig):
    """Config of :class:`ember.policies.bc.modeling_bc.BCPolicy`."""

    type: str = "bc"

    head: str = "mlp"
    """``mlp`` (global conditioning -> horizon x A) or ``transformer`` (learned action queries cross-attend to
    observation tokens, ACT's decoder without the VAE)."""
    hidden_dims: tuple[int, ...] = (512, 512)
    """MLP head widths."""
    dropout: float = 0.1
    transformer_dim: int = 128
    transformer_layers: int = 3
    transformer_heads: int = 4
    loss: str = "l1"
    """``l1`` (robust to multimodal targets: predicts a median, not a blurred mean) or ``mse``."""

    def validate(self) -> None:
        super().validate()
        if self.head not in BC_HEADS:
            raise PolicyError(f"head {self.head!r} is unknown; use one of {BC_HEADS}")
        if self.loss not in BC_LOSSES:
            raise PolicyError(f"loss {self.loss!r} is unknown; use one of {BC_LOSSES}")
        if self.head == "mlp" and not self.hidden_dims:
            raise PolicyError("hidden_dims must list at least one layer for the mlp head")
        if self.head == "transformer" and self.transformer_dim % self.transformer_heads:
            raise PolicyError("transformer_dim must be divisible by transformer_heads")
        if not 0.0 <= self.dropout < 1.0:
            raise PolicyError(f"dropout must be in [0, 1), got {self.dropout}")
