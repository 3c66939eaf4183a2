"""Input transforms shared by data loading, training, evaluation and ``real/``: each conversion exists once.

- :func:`to_float_chw`: camera frames uint8 ``(..., H, W, C)`` (the observation contract) -> float32
  ``(..., C, H, W)`` in [0, 1] (what every policy reads), for numpy arrays and torch tensors alike; already
  channel-first or float input passes through as float.
- :func:`chroma`: brightness-normalized colour (grey of any shade -> 0.5), for float CHW tensors; uint8 HWC frames
  go through :func:`chroma_uint8`, the same formula.
- :func:`photo_jitter`: training-only random contrast, brightness and per-channel gain.

Transforms are plain functions of arrays, or :class:`KeyTransform` objects that apply one to some keys of a batch
dict and compose with :class:`Compose`; a policy builds its own from its config, so the config saved with the
weights is the processor saved with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

CHROMA_SOFTENING = 0.15
"""Added to the luminance before dividing by it, so dark pixels' colour noise is not blown up."""
CHROMA_MIN_BRIGHTNESS = 0.04
"""Pixels darker than this (in [0, 1]) have no reliable colour: their chroma is grey."""


def _numpy_to_float_chw(frames: np.ndarray) -> np.ndarray:
    """Done in numpy on purpose: torch's elementwise kernels on a permuted uint8 view were ~15x slower here (thread
    oversubscription on small CPUs), and this runs once per sample in the loader."""
    chw = np.moveaxis(np.asarray(frames), -1, -3)
    out = np.empty(chw.shape, dtype=np.float32)
    np.multiply(chw, np.float32(1.0 / 255.0), out=out)
    return out


def to_float_chw(x: Any, channels: int | None = None) -> Any:
    """Camera frames as float32 channel-first in [0, 1].

    ``x``: numpy or torch, ``(..., H, W, C)`` or ``(..., C, H, W)``, uint8 (divided by 255) or float (kept).
    ``channels`` says which layout is which when both ends could be channels; without it a last axis of 1 or 3
    (and a third-from-last that is not) means HWC. Returns the same kind (numpy / torch) it was given.
    """
    hwc = _is_hwc(tuple(x.shape), channels)
    if isinstance(x, np.ndarray):
        if hwc and x.dtype == np.uint8:
            return _numpy_to_float_chw(x)
        arr = np.moveaxis(x, -1, -3) if hwc else x
        return np.ascontiguousarray(arr, dtype=np.float32)
    if not isinstance(x, Tensor):
        return to_float_chw(np.asarray(x), channels)
    return to_unit_float(x.movedim(-1, -3) if hwc else x)


def to_unit_float(x: Tensor) -> Tensor:
    """Pixels as float32 in [0, 1]: uint8 divided by 255, float kept (layout untouched)."""
    return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()


def _is_hwc(shape: tuple[int, ...], channels: int | None) -> bool:
    if len(shape) < 3:
        return False
    last, first = shape[-1], shape[-3]
    if channels is not None:
        return last == channels and first != channels
    return last in (1, 3, 4) and first not in (1, 3, 4)


def chroma(x: Tensor) -> Tensor:
    """Brightness-normalized colour of ``(B, 3, H, W)`` images in [0, 1], centred on 0.5 (grey of any shade -> 0.5):
    a coloured pixel keeps its hue and saturation whatever the light; textures in grey, shading and a dimmer light
    vanish."""
    lum = x.mean(dim=-3, keepdim=True)
    c = (x - lum) / (lum + CHROMA_SOFTENING) * (lum > CHROMA_MIN_BRIGHTNESS).to(x.dtype)
    return (c * 0.5 + 0.5).clamp(0.0, 1.0)


def chroma_uint8(frame: np.ndarray) -> np.ndarray:
    """:func:`chroma` of a uint8 ``(H, W, 3)`` frame, as uint8 ``(H, W, 3)`` centred on 128."""
    img = torch.from_numpy(np.ascontiguousarray(np.asarray(frame)[..., :3]))
    out = chroma(to_float_chw(img, channels=3)).movedim(-3, -1)
    return (out * 255.0 + 0.5).to(torch.uint8).numpy()


def photo_jitter(x: Tensor, amount: float) -> Tensor:
    """``(B, C, H, W)`` images in [0, 1] with random contrast and brightness (``1 ± amount``) and per-channel gain
    (``1 ± amount/2``), drawn per sample from torch's RNG."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * _around_one(x, (x.shape[0], 1, 1, 1), amount) + mean
    x = x * _around_one(x, (x.shape[0], 1, 1, 1), amount) * _around_one(x, (*x.shape[:2], 1, 1), amount / 2)
    return x.clamp(0.0, 1.0)


def _around_one(like: Tensor, shape: tuple[int, ...], amount: float) -> Tensor:
    return 1.0 + amount * (2.0 * torch.rand(shape, device=like.device, dtype=like.dtype) - 1.0)


@dataclass
class KeyTransform:
    """Applies ``fn`` to the values of ``keys`` in a batch dict (missing keys are skipped); others pass through."""

    keys: Sequence[str]
    fn: Callable[[Any], Any]

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(batch)
        for key in self.keys:
            if key in out and out[key] is not None:
                out[key] = self.fn(out[key])
        return out


class Compose:
    """Transforms applied in order; an empty one is the identity."""

    def __init__(self, transforms: Iterable[Callable[[Mapping[str, Any]], dict[str, Any]]] = ()) -> None:
        self.transforms = list(transforms)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(batch)
        for transform in self.transforms:
            out = transform(out)
        return out

    def __len__(self) -> int:
        return len(self.transforms)
