"""The VLA's input processor: camera checks, resizing + normalization, and instruction tokenization, as ember
transforms (:mod:`ember.transforms`) built from the config, so the config saved with the weights is the processor
saved with them (the tokenizer's files are written next to the checkpoint by :class:`ember.vla.backbone.LanguageModel`).

- :class:`ImageTransform`: float images in [0, 1] ``(..., C, H, W)`` -> bilinear resize to ``image_size`` ->
  ``(x - mean) / std`` with the vision backbone's mean/std (timm's pretrained_cfg; ImageNet's by default).
- :class:`InstructionTokenizer`: ``task`` (a string or one per sample; "" and None allowed) -> word-piece ids and
  an attention mask, at most ``max_instruction_tokens`` (longer instructions are truncated with a warning, once
  per distinct string).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ember.policies.errors import PolicyError
from ember.policies.features import feature_shape
from ember.transforms import Compose, KeyTransform

INPUT_IDS = "language.input_ids"
ATTENTION_MASK = "language.attention_mask"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ImageTransform:
    """Resize + normalize float CHW images of any leading shape."""

    size: int
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    def __call__(self, x: Tensor) -> Tensor:
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:]).float()
        if tuple(flat.shape[-2:]) != (self.size, self.size):
            flat = F.interpolate(flat, size=(self.size, self.size), mode="bilinear", align_corners=False)
        mean = torch.tensor(self.mean, dtype=flat.dtype, device=flat.device)[:, None, None]
        std = torch.tensor(self.std, dtype=flat.dtype, device=flat.device)[:, None, None]
        return ((flat - mean) / std).reshape(*lead, *flat.shape[1:])


class InstructionTokenizer:
    """``batch["task"]`` -> ``language.input_ids`` / ``language.attention_mask`` (B, L) int64."""

    def __init__(self, tokenizer: Any, max_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._warned: set[str] = set()

    def texts(self, task: Any, batch_size: int) -> list[str]:
        if task is None:
            return [""] * batch_size
        if isinstance(task, str):
            return [task] * batch_size
        texts = ["" if t is None else str(t) for t in task]
        if len(texts) != batch_size:
            raise PolicyError(f"'task' has {len(texts)} instructions for a batch of {batch_size}")
        return texts

    def __call__(self, texts: list[str], device: torch.device) -> dict[str, Tensor]:
        for text in set(texts):
            if text in self._warned:
                continue
            n = len(self.tokenizer(text, add_special_tokens=True)["input_ids"])
            if n > self.max_tokens:
                self._warned.add(text)
                warnings.warn(
                    f"instruction {text[:60]!r}... has {n} tokens; truncated to max_instruction_tokens="
                    f"{self.max_tokens}",
                    stacklevel=3,
                )
        enc = self.tokenizer(
            texts, padding="longest", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        return {INPUT_IDS: enc["input_ids"].to(device), ATTENTION_MASK: enc["attention_mask"].to(device)}


class VLAProcessor:
    """Checks cameras, then images (resize + normalize) and the instruction (tokens) of one batch."""

    def __init__(
        self,
        input_features: Mapping[str, Mapping[str, Any]],
        image_keys: Sequence[str],
        image: ImageTransform,
        tokenizer: InstructionTokenizer,
    ) -> None:
        self.input_features = input_features
        self.image_keys = list(image_keys)
        self.images = Compose([KeyTransform(self.image_keys, image)])
        self.tokenizer = tokenizer

    def check_cameras(self, batch: Mapping[str, Any]) -> None:
        """PolicyError naming the camera and both sizes, or the missing camera and the cameras present."""
        for key in self.image_keys:
            if key not in batch:
                present = sorted(k for k in batch if k.startswith("observation.images."))
                raise PolicyError(
                    f"camera {key!r} is missing from the observation; this policy needs "
                    f"{self.image_keys}, the observation has {present}"
                )
            expected = tuple(feature_shape(key, self.input_features[key]))
            got = tuple(batch[key].shape[-3:])
            if got != expected:
                raise PolicyError(
                    f"camera {key!r} gives images of shape {got} (C, H, W); this policy was trained "
                    f"on {expected}: use the training camera resolution (or retrain)"
                )

    def __call__(self, batch: Mapping[str, Any], batch_size: int, device: torch.device) -> dict[str, Any]:
        self.check_cameras(batch)
        out = self.images(batch)
        out.update(self.tokenizer(self.tokenizer.texts(batch.get("task"), batch_size), device))
        return out
