"""Normalization of training-window columns from ``meta/stats.json``, with LeRobot's modes.

``mean_std`` standardizes; ``min_max`` maps [min, max] and ``quantiles`` maps [q01, q99] to [-1, 1]; ``identity``
leaves a key alone. A stat the mode needs and the dataset lacks is an error, never a silent identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ember.data.errors import DatasetError

if TYPE_CHECKING:
    from ember.data.dataset import EmberDataset

NORMALIZATION_MODES = ("mean_std", "min_max", "quantiles", "identity")
_EPS = 1e-8
_NEEDED = {"mean_std": ("mean", "std"), "min_max": ("min", "max"), "quantiles": ("q01", "q99")}


def normalization_params(
    dataset: EmberDataset, modes: Mapping[str, str], keys: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``key -> (shift, scale)`` with ``normalized = (x - shift) / scale`` (then -1 for the [-1, 1] modes)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key, mode in modes.items():
        if mode not in NORMALIZATION_MODES:
            raise DatasetError(f"normalization mode {mode!r} for {key!r}: use one of {NORMALIZATION_MODES}.")
        if key not in keys:
            raise DatasetError(f"normalization given for {key!r}, which is not among the keys {list(keys)}.")
        if mode == "identity":
            continue
        needed = _NEEDED[mode]
        st = dataset.meta.stats.get(key, {})
        missing = [n for n in needed if n not in st]
        if missing:
            raise DatasetError(
                f"{dataset.root}/meta/stats.json has no {missing} for {key!r}, needed by {mode!r} "
                "normalization; run `ember data repair` to recompute stats."
            )
        a, b = (np.asarray(st[n], dtype=np.float64) for n in needed)
        if mode == "mean_std":
            out[key] = (a.astype(np.float32), (b + _EPS).astype(np.float32))
        else:  # to [-1, 1]: 2 (x - lo) / (hi - lo) - 1 == (x - mid) / half
            out[key] = (((a + b) / 2).astype(np.float32), ((b - a) / 2 + _EPS).astype(np.float32))
    return out
