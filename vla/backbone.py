"""The VLA prefix: vision tokens (timm) + language tokens (transformers) + state tokens -> a small transformer.

Per observation step ``t`` and camera ``c`` the vision backbone's patch features (timm ``forward_features``:
(C, h, w) for CNNs, (L, C) for ViTs) are average-pooled to at most ``vision_grid`` x ``vision_grid`` tokens and
projected to ``d_model``; the instruction's word-piece hidden states (the language model's last layer) are
projected to ``d_model``; the (normalized) joint state of each step is one token. Each token gets a learned
embedding of its place (which patch of which camera at which step, which word, which step's state), then
``prefix_layers`` of bidirectional self-attention mix them (padding words masked out). The result is
:class:`ember.policies.tokens.ObservationTokens`: ``tokens`` (B, N, d_model), ``mask`` (padded words False) and
``pooled`` (the masked mean), so the action heads, the motion head and a Q-function over chunks read the same prefix.

Loading rules (nothing is downloaded): the vision backbone is random-init unless ``vision_pretrained_path`` names
local weights; the language model comes from ``backbone_path`` / ``language_backbone_path`` (default: the packaged
all-MiniLM-L6-v2) or is built from ``language_config``. While a checkpoint loads, neither path is read: the
language model's config and tokenizer were saved into the checkpoint (``language_backbone/``) and the weights are
in ``model.safetensors``.
"""

from __future__ import annotations

import contextvars
import os
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ember.policies.base import loading_checkpoint
from ember.policies.errors import PolicyError
from ember.policies.features import feature_shape
from ember.policies.tokens import ObservationTokens
from ember.vla.configuration_vla import VLAConfig
from ember.vla.processor_vla import ATTENTION_MASK, IMAGENET_MEAN, IMAGENET_STD, INPUT_IDS

LANGUAGE_DIR = "language_backbone"
"""Checkpoint sub-folder holding the language model's transformers config and tokenizer files (not weights)."""
CHECKPOINT_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "vla_checkpoint_dir", default=None
)
"""Set by ``VLAPolicy.from_pretrained`` while it builds the policy: where ``language_backbone/`` is."""
_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


# ------------------------------------------------------------------------------------------------- vision
def _load_vision_weights(model: nn.Module, path: str) -> None:
    """Local weights into the timm model: a .safetensors / .pth / .bin file, or a folder holding one."""
    p = Path(path)
    if p.is_dir():
        found = (
            [
                p / n
                for n in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
                if (p / n).is_file()
            ]
            + sorted(p.glob("*.safetensors"))
            + sorted(p.glob("*.pth"))
        )
        if not found:
            raise PolicyError(
                f"vision_pretrained_path {p} holds no weights (model.safetensors, pytorch_model.bin, "
                "*.safetensors or *.pth); point it at the file or the timm folder"
            )
        p = found[0]
    if not p.is_file():
        raise PolicyError(f"vision_pretrained_path {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise PolicyError(
            f"none of the weights in {p} fit the timm model {type(model).__name__}; is it the same "
            "architecture as vision_backbone?"
        )
    model.load_state_dict(usable, strict=False)
    skipped = sorted(set(own) - set(usable))
    if skipped:
        warnings.warn(
            f"{len(skipped)} vision parameters are not in {p} and stay random (e.g. {skipped[:3]})",
            stacklevel=3,
        )


class VisionEncoder(nn.Module):
    """A timm backbone's patch features as (N, grid*grid, d_model) tokens per image."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        import timm

        try:
            self.model = timm.create_model(config.vision_backbone, pretrained=False, num_classes=0)
        except RuntimeError as exc:  # timm's "Unknown model"
            raise PolicyError(
                f"vision_backbone {config.vision_backbone!r}: {exc}; use a timm model name "
                "(timm.list_models())"
            ) from exc
        if config.vision_pretrained_path and not loading_checkpoint():
            _load_vision_weights(self.model, config.vision_pretrained_path)
        cfg = getattr(self.model, "pretrained_cfg", {}) or {}
        self.mean = tuple(cfg.get("mean", IMAGENET_MEAN))
        self.std = tuple(cfg.get("std", IMAGENET_STD))
        self.grid = config.vision_grid
        with torch.no_grad():
            was = self.model.training
            self.model.eval()
            probe = self._grid_features(torch.zeros(1, 3, config.image_size, config.image_size))
            self.model.train(was)
        self.n_tokens = probe.shape[-1] * probe.shape[-2]
        self.proj = nn.Linear(probe.shape[1], config.d_model)

    def _grid_features(self, x: Tensor) -> Tensor:
        f = self.model.forward_features(x)
        if f.ndim == 3:  # ViT-style (N, L, C): drop class/register tokens, back to a grid
            f = f[:, int(getattr(self.model, "num_prefix_tokens", 0)) :]
            side = int(round(f.shape[1] ** 0.5))
            if side * side != f.shape[1]:
                raise PolicyError(
                    f"{type(self.model).__name__} gives {f.shape[1]} patch tokens, not a square grid"
                )
            f = f.transpose(1, 2).reshape(f.shape[0], f.shape[2], side, side)
        elif f.ndim != 4:
            raise PolicyError(
                f"timm forward_features gave shape {tuple(f.shape)}; expected (N,C,h,w) or (N,L,C)"
            )
        h, w = f.shape[-2:]
        return F.adaptive_avg_pool2d(f, (min(self.grid, h), min(self.grid, w)))

    def forward(self, images: Tensor) -> Tensor:
        f = self._grid_features(images)
        return self.proj(f.flatten(2).transpose(1, 2))


# ----------------------------------------------------------------------------------------------- language
def _require_model_dir(path: str, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise PolicyError(f"{what} {p} is not a directory; point it at a local transformers model folder")
    if (
        not (p / "config.json").is_file()
        or not any((p / n).is_file() for n in _WEIGHT_FILES)
        and not any(p.glob("*.safetensors"))
    ):
        raise PolicyError(
            f"{what} {p} holds no transformers model (needs config.json and model.safetensors or "
            "pytorch_model.bin); save one there with model.save_pretrained(path)"
        )
    return p


def _text_side(model: nn.Module) -> nn.Module:
    """The language model of a multimodal model (SmolVLM/Idefics3: ``text_model``; PaliGemma, LLaVA, Qwen-VL:
    ``language_model``); a text model as it is."""
    for name in ("text_model", "language_model"):
        sub = getattr(model, name, None)
        if isinstance(sub, nn.Module):
            return sub
    return model


def _hidden_size(config: Any) -> int:
    for cfg in (config, getattr(config, "text_config", None)):
        size = getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model", None)
        if size:
            return int(size)
    raise PolicyError(f"cannot tell the hidden size of {type(config).__name__}")


class LanguageModel(nn.Module):
    """Tokenizer + transformers model; ``forward`` -> (B, L, d_model) word tokens."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        ckpt = CHECKPOINT_DIR.get()
        if loading_checkpoint() and ckpt is not None and (ckpt / LANGUAGE_DIR).is_dir():
            source = ckpt / LANGUAGE_DIR
            hf_config = AutoConfig.from_pretrained(str(source))
            model = AutoModel.from_config(hf_config)
            tokenizer_dir = source
        else:
            path = config.backbone_path or config.language_backbone_path
            what = "backbone_path" if config.backbone_path else "language_backbone_path"
            if not path:
                from ember.policies.conditioning.language import default_model_path

                path = default_model_path()
            if config.language_config:
                settings = dict(config.language_config)
                model_type = settings.pop("model_type", "bert")
                hf_config = AutoConfig.for_model(model_type, **settings)
                model = AutoModel.from_config(hf_config)
                tokenizer_dir = Path(path)
            else:
                tokenizer_dir = _require_model_dir(path, what)
                model = AutoModel.from_pretrained(str(tokenizer_dir))
                hf_config = model.config
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        except (OSError, ValueError) as exc:
            raise PolicyError(f"no tokenizer in {tokenizer_dir}: {exc}") from exc
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.hf_config = hf_config
        text = _text_side(model)
        if config.freeze_language or config.lora_rank > 0:
            text.requires_grad_(False)
        if config.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=config.lora_rank,
                lora_alpha=config.lora_alpha,
                target_modules=list(config.lora_target_modules),
                lora_dropout=0.0,
            )
            text = get_peft_model(text, lora)
        self.model = text
        self.frozen = config.freeze_language and config.lora_rank == 0
        self.proj = nn.Linear(_hidden_size(getattr(text, "config", hf_config)), config.d_model)

    def save_processor(self, directory: Path) -> None:
        """The transformers config and tokenizer files, so a checkpoint rebuilds the model without its source."""
        directory.mkdir(parents=True, exist_ok=True)
        self.hf_config.save_pretrained(str(directory))
        self.tokenizer.save_pretrained(str(directory))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return self.proj(hidden)


# -------------------------------------------------------------------------------------------------- prefix
class VLABackbone(nn.Module):
    """Observation window + instruction tokens -> :class:`ObservationTokens` (the prefix)."""

    def __init__(self, config: VLAConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.image_keys = list(config.image_keys)
        self.state_keys = list(config.state_keys)
        self.vision = VisionEncoder(config) if self.image_keys else None
        if self.vision is not None and config.freeze_vision:
            self.vision.model.requires_grad_(False)
        self.language = LanguageModel(config)
        state_dim = sum(feature_shape(k, config.input_features[k])[0] for k in self.state_keys)
        self.state_proj = nn.Linear(state_dim, d) if state_dim else None
        n_vision = (self.vision.n_tokens if self.vision else 0) * len(self.image_keys) * config.n_obs_steps
        self.vision_pos = nn.Parameter(torch.randn(1, max(n_vision, 1), d) * 0.02)
        self.state_pos = nn.Parameter(torch.randn(1, config.n_obs_steps, d) * 0.02)
        self.word_pos = nn.Parameter(torch.randn(1, config.max_instruction_tokens, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, 4 * d, config.dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(layer, config.prefix_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def train(self, mode: bool = True) -> VLABackbone:
        super().train(mode)
        if self.vision is not None and self.config.freeze_vision:
            self.vision.model.eval()  # frozen: batch-norm statistics stay the pretrained ones
        if self.language.frozen:
            self.language.model.eval()
        return self

    def forward(self, batch: dict[str, Any]) -> ObservationTokens:
        """``batch``: processed images (B, T, 3, S, S), normalized state (B, T, D), token ids / mask (B, L)."""
        parts: list[Tensor] = []
        masks: list[Tensor] = []
        names: list[str] = []
        ids, word_mask = batch[INPUT_IDS], batch[ATTENTION_MASK].bool()
        b = ids.shape[0]
        t_steps = self.config.n_obs_steps
        if self.vision is not None:
            images = torch.stack([batch[k] for k in self.image_keys], dim=2)  # (B, T, C, 3, S, S)
            tokens = self.vision(images.flatten(0, 2))  # (B*T*C, G, d)
            tokens = tokens.reshape(b, -1, tokens.shape[-1]) + self.vision_pos
            parts.append(tokens)
            names += [
                f"{k}@{t - t_steps + 1}/{g}"
                for t in range(t_steps)
                for k in self.image_keys
                for g in range(self.vision.n_tokens)
            ]
        if self.state_proj is not None:
            state = torch.cat([batch[k] for k in self.state_keys], dim=-1)  # (B, T, D)
            parts.append(self.state_proj(state) + self.state_pos)
            names += [f"observation.state@{t - t_steps + 1}" for t in range(t_steps)]
        words = self.language(ids, word_mask.long()) + self.word_pos[:, : ids.shape[1]]
        parts.append(words)
        names += [f"language/{i}" for i in range(ids.shape[1])]
        for p in parts[:-1]:
            masks.append(torch.ones(b, p.shape[1], dtype=torch.bool, device=p.device))
        masks.append(word_mask)
        tokens = torch.cat(parts, dim=1)
        mask = torch.cat(masks, dim=1)
        tokens = self.norm(self.encoder(tokens, src_key_padding_mask=~mask))
        weights = mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return ObservationTokens(tokens, mask, pooled, tuple(names), (tokens.shape[-1],) * tokens.shape[1])
