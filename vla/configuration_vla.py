"""``VLAConfig``: a vision-language-action policy: timm vision + a transformers language backbone + an action head.

The prefix (:mod:`ember.vla.backbone`) reads every camera's patch tokens, the instruction's word-piece tokens and the
joint state; an action head reads the prefix: ``head="token"`` (per-dimension bins decoded in parallel, OpenVLA-OFT
style, with a log-probability of what it chose) or ``head="flow"`` (a pi0-style rectified-flow action expert that
cross-attends to the prefix). Optional RT-H language motions: a motion head over ``motion_vocabulary`` whose motion
(predicted, or an operator's override) is one more prefix token the action head reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ember.policies.config import PolicyConfig
from ember.policies.errors import PolicyError

HEADS = ("flow", "token")
TIME_SAMPLINGS = ("uniform", "beta")


@dataclass
class VLAConfig(PolicyConfig):
    """Config of :class:`ember.vla.modeling_vla.VLAPolicy`."""

    type: str = "vla"
    n_obs_steps: int = 1
    horizon: int = 16
    n_action_steps: int = 8

    # ------------------------------------------------------------------------------------------- vision
    image_size: int = 64
    """Every camera is resized to image_size x image_size before the vision backbone (the processor's job)."""
    vision_backbone: str = "resnet10t"
    """Any timm model name; built with random weights unless ``vision_pretrained_path`` is set."""
    vision_pretrained_path: str = ""
    """Local weights for the vision backbone: a .safetensors / .pth file, or a folder holding one."""
    vision_grid: int = 4
    """Patch features are average-pooled to at most vision_grid x vision_grid tokens per camera and step."""
    freeze_vision: bool = False

    # ----------------------------------------------------------------------------------------- language
    language_backbone_path: str = ""
    """A local transformers model (weights + tokenizer); "" = the packaged all-MiniLM-L6-v2."""
    backbone_path: str = ""
    """Any local transformers model directory (SmolVLM, PaliGemma, Qwen-VL, ...); overrides
    language_backbone_path. For a multimodal model its language model reads the instruction."""
    language_config: dict[str, Any] = field(default_factory=dict)
    """Build the language model from this transformers config (``{"model_type": "bert", ...}``, random init)
    instead of loading weights; the tokenizer still comes from the path (tests, from-scratch runs)."""
    freeze_language: bool = True
    max_instruction_tokens: int = 32
    """Longer instructions are truncated (with a warning)."""
    lora_rank: int = 0
    """> 0: LoRA adapters (peft) of this rank on the language model; its base weights stay frozen."""
    lora_alpha: int = 16
    lora_target_modules: tuple[str, ...] = ("query", "value")
    """Module names LoRA adapts (BERT: query/value; Llama-style: q_proj/v_proj)."""

    # -------------------------------------------------------------------------------------------- prefix
    d_model: int = 128
    n_heads: int = 4
    prefix_layers: int = 2
    dropout: float = 0.0

    # ----------------------------------------------------------------------------------------------- head
    head: str = "flow"
    head_layers: int = 2
    n_bins: int = 256
    """Token head: bins per action dimension."""
    adaptive_bins: bool = False
    """Token head: bin edges at the dataset's per-dimension action quantiles (SpatialVLA) instead of uniform."""
    temperature: float = 0.0
    """Token head at inference: 0 = greedy, > 0 = sample from softmax(logits / temperature)."""
    num_inference_steps: int = 5
    """Flow head: Euler steps from noise (t=0) to actions (t=1)."""
    time_sampling: str = "beta"
    sigma_min: float = 0.0

    # -------------------------------------------------------------------------------------------- motions
    motion_vocabulary: tuple[str, ...] = ()
    """RT-H motion phrases (meta/motions.json); empty = no motion head."""
    motion_weight: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.head not in HEADS:
            raise PolicyError(f"head {self.head!r} is unknown; use one of {HEADS}")
        if self.time_sampling not in TIME_SAMPLINGS:
            raise PolicyError(f"time_sampling {self.time_sampling!r} is unknown; use one of {TIME_SAMPLINGS}")
        for name in (
            "image_size",
            "vision_grid",
            "d_model",
            "n_heads",
            "prefix_layers",
            "head_layers",
            "max_instruction_tokens",
            "num_inference_steps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PolicyError(f"{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise PolicyError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.n_bins < 2:
            raise PolicyError(f"n_bins must be >= 2, got {self.n_bins}")
        if self.lora_rank < 0:
            raise PolicyError(f"lora_rank must be >= 0, got {self.lora_rank}")
        if self.temperature < 0:
            raise PolicyError(f"temperature must be >= 0, got {self.temperature}")
        if self.max_instruction_tokens < 2:
            raise PolicyError("max_instruction_tokens must be >= 2 (room for the tokenizer's special tokens)")
        if len(set(self.motion_vocabulary)) != len(self.motion_vocabulary):
            raise PolicyError("motion_vocabulary has duplicate phrases")

    @property
    def state_keys(self) -> list[str]:
        """Low-dimensional observation keys (joint state; environment state where a research row uses it)."""
        return [k for k in self.observation_keys if k not in self.image_keys]
