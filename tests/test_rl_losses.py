"""IQL's and RIQL's pure functions against hand computations (policies/rl/losses.py, critics.aggregate)."""

from __future__ import annotations

import math

import pytest
import torch

from ember.policies.rl.critics import aggregate
from ember.policies.rl.losses import advantage_weights, expectile_loss, huber, nstep_return, q_regression_loss


def test_expectile_loss_weights_positive_errors_by_tau() -> None:
    # (0.7 * 1^2 + 0.3 * (-2)^2) / 2
    assert expectile_loss(torch.tensor([1.0, -2.0]), 0.7).item() == pytest.approx(0.95)
    # tau = 0.5 is half the MSE
    diff = torch.tensor([0.3, -1.2, 2.0])
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * float(diff.square().mean()))


def test_the_expectile_minimiser_is_an_upper_expectile() -> None:
    q = torch.tensor([0.0, 0.0, 0.0, 1.0])  # a value minimising the tau=0.9 expectile loss of Q - v
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        expectile_loss(q - v, 0.9).backward()
        opt.step()
    # stationary point: 0.9 * (1 - v) = 3 * 0.1 * v  ->  v = 0.9 / 1.2 = 0.75 (the mean would be 0.25)
    assert v.item() == pytest.approx(0.75, abs=1e-4)


def test_huber_and_the_q_regression_losses() -> None:
    assert huber(torch.tensor([0.5, -3.0]), 1.0).tolist() == pytest.approx([0.125, 2.5])
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # (E=2, B=2)
    target = torch.tensor([1.0, 1.0])
    assert q_regression_loss(q, target).item() == pytest.approx((0 + 1) / 2 + (4 + 9) / 2)
    assert q_regression_loss(q, target, huber_delta=1.0).item() == pytest.approx(
        (0 + 0.5) / 2 + (1.5 + 2.5) / 2
    )


def test_advantage_weights_are_clipped_exponentials() -> None:
    w = advantage_weights(torch.tensor([0.0, 1.0, 10.0, -1.0]), beta=2.0, max_weight=100.0)
    assert w.tolist() == pytest.approx([1.0, math.exp(2.0), 100.0, math.exp(-2.0)], rel=1e-5)
    assert not w.requires_grad


def test_ensemble_quantiles() -> None:
    q = torch.tensor([[1.0, 5.0], [3.0, 2.0], [2.0, 9.0]])  # (E=3, B=2)
    assert aggregate(q, 0.0).tolist() == [1.0, 2.0]
    assert aggregate(q, 0.5).tolist() == [2.0, 5.0]
    assert aggregate(q, 0.25).tolist() == pytest.approx([1.5, 3.5])  # between the 1st and 2nd order statistic


def test_n_step_returns_stop_at_the_episode_end() -> None:
    rewards = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    done = torch.tensor([[False, False, False], [False, True, True], [False, False, False]])
    pad = torch.tensor([[False, False, False], [False, False, True], [False, False, False]])
    next_pad = torch.tensor([False, True, True])
    returns, discount = nstep_return(rewards, done, pad, 0.5, next_pad)
    assert returns.tolist() == pytest.approx([1 + 0.5 * 2 + 0.25 * 3, 1 + 0.5 * 2, 2.75])
    assert discount.tolist() == pytest.approx([0.125, 0.0, 0.0])
