"""``ActionTokenizer``: each dimension of a normalized action (in [-1, 1]) as one of ``n_bins`` discrete tokens.

OpenVLA discretizes every action dimension into 256 uniform bins over its range; SpatialVLA's adaptive grid puts
the edges at the data's quantiles instead, so every bin holds the same share of the demonstrations and precision
goes where the actions are. Per dimension ``d`` with edges ``e_d[0] < ... < e_d[n]``:

    encode(x)_d = k  such that  e_d[k] <= x_d < e_d[k+1]   (clamped to [0, n-1])
    decode(k)_d = (e_d[k] + e_d[k+1]) / 2                  (the bin's centre)

so ``|decode(encode(x)) - x| <= (e_d[k+1] - e_d[k]) / 2`` for every x inside the range. The edges are a buffer:
they travel with the weights, and a loaded policy decodes exactly like the trained one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ember.policies.errors import PolicyError

QUANTILE_LEVELS = {"min": 0.0, "q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99, "max": 1.0}
"""The quantiles ember's meta/stats.json holds per dimension (ember/data/stats.py), with their levels."""
_MIN_BIN = 1e-4
"""Narrowest bin (normalized units) an adaptive grid may have, so edges stay strictly increasing where the data
repeats one value."""


def _strictly_increasing(edges: np.ndarray) -> np.ndarray:
    """(A, n+1) edges in [-1, 1] with every bin at least _MIN_BIN wide (rescaled to keep the ends)."""
    widths = np.maximum(np.diff(edges, axis=1), _MIN_BIN)
    widths = widths / widths.sum(axis=1, keepdims=True) * (edges[:, -1:] - edges[:, :1])
    out = np.concatenate([edges[:, :1], edges[:, :1] + np.cumsum(widths, axis=1)], axis=1)
    out[:, -1] = edges[:, -1]
    return out


def quantile_edges_from_stats(stats: Mapping[str, Any], n_bins: int) -> np.ndarray:
    """(A, n_bins+1) edges in min-max-normalized units at equal-probability levels, from the dataset's
    per-dimension quantiles (piecewise-linear CDF through min, q01, q10, q50, q90, q99, max)."""
    missing = [k for k in QUANTILE_LEVELS if k not in stats]
    if missing:
        raise PolicyError(
            f"adaptive_bins needs the action quantiles {missing} in meta/stats.json; recompute the "
            "dataset's stats with ember (ember/data/stats.py) or set adaptive_bins=false"
        )
    lo = np.asarray(stats["min"], dtype=np.float64).ravel()
    hi = np.asarray(stats["max"], dtype=np.float64).ravel()
    scale = np.where(hi - lo > 1e-6, hi - lo, 1.0)
    values = np.stack(
        [2.0 * (np.asarray(stats[k], dtype=np.float64).ravel() - lo) / scale - 1.0 for k in QUANTILE_LEVELS],
        axis=1,
    )  # (A, 7), nondecreasing per row
    values = np.maximum.accumulate(np.clip(values, -1.0, 1.0), axis=1)
    levels = np.array(list(QUANTILE_LEVELS.values()))
    targets = np.linspace(0.0, 1.0, n_bins + 1)
    edges = np.stack([np.interp(targets, levels, row) for row in values])
    edges[:, 0], edges[:, -1] = -1.0, 1.0
    return _strictly_increasing(edges)


def quantile_edges_from_actions(actions: np.ndarray, n_bins: int) -> np.ndarray:
    """(A, n_bins+1) edges at the exact per-dimension quantiles of normalized ``actions`` (N, A); values outside
    the data's range fall in the end bins."""
    x = np.clip(np.asarray(actions, dtype=np.float64).reshape(-1, np.shape(actions)[-1]), -1.0, 1.0)
    edges = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1), axis=0).T  # ends at the data's min / max
    edges[:, -1] = np.maximum(edges[:, -1], edges[:, 0] + n_bins * _MIN_BIN)
    return _strictly_increasing(np.maximum.accumulate(edges, axis=1))


class ActionTokenizer(nn.Module):
    """Per-dimension bins over normalized actions; ``encode`` -> int64 tokens, ``decode`` -> bin centres."""

    def __init__(self, action_dim: int, n_bins: int) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.n_bins = n_bins
        self.register_buffer("edges", torch.linspace(-1.0, 1.0, n_bins + 1).repeat(action_dim, 1))

    def set_edges(self, edges: np.ndarray | Tensor) -> None:
        edges = torch.as_tensor(np.asarray(edges), dtype=torch.float32)
        if tuple(edges.shape) != (self.action_dim, self.n_bins + 1):
            raise PolicyError(
                f"bin edges have shape {tuple(edges.shape)}, expected ({self.action_dim}, {self.n_bins + 1})"
            )
        if not bool((edges.diff(dim=1) > 0).all()):
            raise PolicyError("bin edges must be strictly increasing in every dimension")
        self.edges.copy_(edges.to(self.edges.device))

    @property
    def centers(self) -> Tensor:
        """(A, n_bins) the value each token decodes to."""
        return 0.5 * (self.edges[:, 1:] + self.edges[:, :-1])

    @property
    def widths(self) -> Tensor:
        return self.edges.diff(dim=1)

    def encode(self, actions: Tensor) -> Tensor:
        """(..., A) normalized actions -> (..., A) int64 tokens in [0, n_bins)."""
        shape = actions.shape
        flat = actions.reshape(-1, self.action_dim).T.contiguous().to(self.edges.dtype)  # (A, N)
        inner = self.edges[:, 1:-1].contiguous()
        tokens = torch.searchsorted(inner, flat, right=True)
        return tokens.T.reshape(shape).clamp(0, self.n_bins - 1)

    def decode(self, tokens: Tensor) -> Tensor:
        """(..., A) tokens -> (..., A) normalized actions (bin centres)."""
        shape = tokens.shape
        flat = tokens.reshape(-1, self.action_dim).T  # (A, N)
        return torch.gather(self.centers, 1, flat.long()).T.reshape(shape)
