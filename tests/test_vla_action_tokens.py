"""ember.vla.action_tokens: uniform and adaptive (quantile) bins round-trip within half a bin; edges from ember's stats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ember.policies.errors import PolicyError
from ember.vla.action_tokens import ActionTokenizer, quantile_edges_from_actions, quantile_edges_from_stats


def _round_trip_error(tok: ActionTokenizer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = tok.encode(x)
    back = tok.decode(tokens)
    half = 0.5 * tok.widths.gather(1, tokens.reshape(-1, tok.action_dim).T).T.reshape(x.shape)
    return (back - x).abs(), half


def test_uniform_bins_round_trip_within_half_a_bin() -> None:
    tok = ActionTokenizer(action_dim=3, n_bins=32)
    x = torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    err, half = _round_trip_error(tok, x)
    assert bool((err <= half + 1e-6).all())
    assert float(err.max()) <= 1.0 / 32 + 1e-6  # uniform bins are 2/32 wide
    assert tok.encode(torch.tensor([[-1.0, 1.0, 0.0]])).tolist() == [[0, 31, 16]]


def test_adaptive_bins_round_trip_and_follow_the_data() -> None:
    rng = np.random.default_rng(0)
    actions = np.clip(rng.normal(0.0, 0.1, (4000, 2)), -1, 1)  # concentrated near 0
    tok = ActionTokenizer(action_dim=2, n_bins=16)
    tok.set_edges(quantile_edges_from_actions(actions, 16))
    x = torch.as_tensor(actions[:500], dtype=torch.float32)
    err, half = _round_trip_error(tok, x)
    assert bool((err <= half + 1e-6).all())
    counts = np.bincount(
        tok.encode(torch.as_tensor(actions, dtype=torch.float32))[:, 0].numpy(), minlength=16
    )
    assert counts[1:-1].min() > 0.5 * 4000 / 16  # equal-probability bins (ends absorb the clipped tails)
    assert float(err.mean()) < 0.5 * float(_round_trip_error(ActionTokenizer(2, 16), x)[0].mean())


def test_edges_from_ember_stats_quantiles() -> None:
    stats = {
        "min": [0.0],
        "max": [10.0],
        "q01": [1.0],
        "q10": [2.0],
        "q50": [5.0],
        "q90": [8.0],
        "q99": [9.0],
    }
    edges = quantile_edges_from_stats(stats, 10)
    assert edges.shape == (1, 11)
    assert edges[0, 0] == -1.0 and edges[0, -1] == 1.0 and bool((np.diff(edges) > 0).all())
    assert edges[0, 5] == pytest.approx(0.0)  # the median (5.0) normalizes to 0
    assert edges[0, 1] == pytest.approx(2 * 2.0 / 10 - 1)  # q10 = 2.0
    with pytest.raises(PolicyError, match="q01"):
        quantile_edges_from_stats({"min": [0.0], "max": [1.0]}, 10)
