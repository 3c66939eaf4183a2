"""Conditioning inputs of a batch -> tensors a chunk policy's encoder reads (and the checks that they are there).

Language is embedded by the frozen sentence model (one per process, loaded on first use), images become float CHW
in [0, 1] (:func:`ember.transforms.to_unit_float`; a coloured drawing given to a one-channel sketch input counts
any stroke), keypoints (K, 2). Camera-frame conditionings then go through the policy's transforms: colour only
(``conditioning.chroma``) and, in training, photometric jitter (``conditioning.photo_jitter``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ember.policies.conditioning.keys import (
    GOAL_IMAGE,
    IMAGE_CHANNELS,
    INITIAL_IMAGE,
    KEYPOINTS,
    LANGUAGE,
    batch_key,
)
from ember.policies.conditioning.language import (
    LANGUAGE_TOKEN_MASK,
    LANGUAGE_TOKENS,
    SentenceEmbedder,
    get_embedder,
)
from ember.policies.errors import PolicyError
from ember.transforms import Compose, KeyTransform, chroma, photo_jitter, to_unit_float


def conditioning_transforms(config: Any) -> tuple[Compose, Compose]:
    """(inference, training) transforms of the camera-frame conditionings of a conditioning spec: colour only
    (``chroma``), and in training first a photometric jitter (``photo_jitter``). Drawings (sketches) keep their
    colours, which carry meaning."""
    frames = (GOAL_IMAGE, INITIAL_IMAGE)
    inference = [KeyTransform(frames, chroma)] if config.chroma else []
    amount = config.photo_jitter
    jitter = [KeyTransform(frames, lambda x: photo_jitter(x, amount))] if amount > 0 else []
    return Compose(inference), Compose(jitter + inference)


class ConditioningInputs:
    """What a policy conditioned on ``config`` (its :class:`~policies.encoder_config.ConditioningSpec`) needs
    from a batch, as tensors."""

    def __init__(self, config: Any, policy_name: str) -> None:
        self.config, self.policy_name = config, policy_name
        self.inference_transforms, self.training_transforms = conditioning_transforms(config)
        self._embedder: SentenceEmbedder | None = None

    @property
    def alternatives(self) -> tuple[str, ...]:
        """Conditionings of which one suffices (GRIF: a goal image or an instruction)."""
        return (GOAL_IMAGE, LANGUAGE) if self.config.grif else ()

    @property
    def embedder(self) -> SentenceEmbedder:
        """The frozen sentence embedder (shared per process; loaded on first use)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.config.language_model_path, self.config.language_embedding_dim)
        return self._embedder

    def check(self, batch: Mapping[str, Any]) -> None:
        """Raises PolicyError naming a missing conditioning and how to provide it."""
        alternatives = self.alternatives
        if alternatives and all(batch.get(batch_key(k)) is None for k in alternatives):
            raise PolicyError(
                f"observation has neither 'task' nor 'conditioning.goal_image'; this GRIF policy is steered by "
                f"either. Keys present: {sorted(batch)}"
            )
        for kind in self.config.kinds:
            key = batch_key(kind)
            if batch.get(key) is None and kind not in alternatives:
                how = (
                    "pass the instruction as 'task'"
                    if kind == LANGUAGE
                    else "produce it from the episode with ember.conditioning (training) or give "
                    "--conditioning_image / --conditioning_keypoints at evaluation"
                )
                raise PolicyError(
                    f"observation is missing {key!r}, which this {self.policy_name!r} policy conditioned on "
                    f"{list(self.config.kinds)} needs; {how}. Keys present: {sorted(batch)}"
                )

    def tensors(
        self, batch: Mapping[str, Any], batch_size: int, device: torch.device, train: bool
    ) -> dict[str, Tensor]:
        """:meth:`raw` through the policy's (training or inference) transforms: what the encoder reads."""
        raw = self.raw(batch, batch_size, device)
        return (self.training_transforms if train else self.inference_transforms)(raw)

    def raw(self, batch: Mapping[str, Any], batch_size: int, device: torch.device) -> dict[str, Tensor]:
        """kind -> tensor on ``device``: sentence embeddings, float CHW images in [0, 1], keypoints."""
        out: dict[str, Tensor] = {}
        for kind in self.config.kinds:
            value = batch.get(batch_key(kind))
            if value is None:  # an unused GRIF alternative (check ran first)
                continue
            if kind == LANGUAGE:
                texts = [value] if isinstance(value, str) else [str(t) for t in value]
                if len(texts) == 1 and batch_size > 1:
                    texts = texts * batch_size
                x = self.embedder(texts).to(device)
            else:
                x = torch.as_tensor(np.asarray(value)) if not isinstance(value, Tensor) else value
                x = x.to(device)
                if kind == KEYPOINTS:
                    x = x.float().reshape(x.shape[0], -1, 2) if x.ndim >= 2 else x.float().reshape(1, -1, 2)
                    if x.shape[1] != self.config.num_keypoints:
                        raise PolicyError(
                            f"'conditioning.keypoints' holds {x.shape[1]} points, the policy was trained "
                            f"with num_keypoints={self.config.num_keypoints}"
                        )
                else:
                    x = image_batch(x, IMAGE_CHANNELS[kind], kind)
            if x.shape[0] == 1 and batch_size > 1:
                x = x.expand(batch_size, *x.shape[1:])
            if x.shape[0] != batch_size:
                raise PolicyError(
                    f"conditioning {kind!r} has batch size {x.shape[0]}, observations {batch_size}"
                )
            out[kind] = x
            if kind == LANGUAGE and self.config.language_tokens:
                tokens, mask = self.embedder.tokens(texts)
                out[LANGUAGE_TOKENS], out[LANGUAGE_TOKEN_MASK] = tokens.to(device), mask.to(device)
        return out


def image_batch(x: Tensor, channels: int, kind: str) -> Tensor:
    """(B, C, H, W) float in [0, 1] from (B, H, W, C) / (B, C, H, W) / (H, W[, C]), uint8 or float."""
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:  # one image, CHW or HWC
        x = x[None]
    if x.ndim != 4:
        raise PolicyError(f"conditioning {kind!r} must be an image batch (B, C, H, W); got {tuple(x.shape)}")
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):  # channels last (HWC), the camera format
        x = x.movedim(-1, 1)
    x = to_unit_float(x)
    if x.shape[1] != channels:
        if channels == 1 and x.shape[1] == 3:
            x = x.amax(dim=1, keepdim=True)  # a coloured drawing: any stroke counts
        elif channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise PolicyError(
                f"conditioning {kind!r} has {x.shape[1]} channels, needs {channels}; got {tuple(x.shape)}"
            )
    return x
