"""The pure functions IQL and RIQL are made of (tested against hand computations in tests/test_rl_losses.py).

With u = Q(s, a) - V(s) (Q from the target network, aggregated over the ensemble):

    expectile:   L_V = E[ |tau - 1(u < 0)| u^2 ]              tau = 0.5: MSE (the mean); tau -> 1: max over actions
    huber:       l_d(x) = x^2 / 2 if |x| <= d else d (|x| - d / 2)     (RIQL's Q regression: robust to bad rewards)
    n-step:      y = sum_{k<n} gamma^k r_k m_k + gamma^n (1 - done) V(s_{t+n})
                 m_k = 1 while no episode end came before step k (steps past the end add nothing)
    weights:     w = min(exp(beta u), max_weight)                (advantage-weighted regression, detached)
"""

from __future__ import annotations

import torch
from torch import Tensor


def expectile_loss(diff: Tensor, tau: float) -> Tensor:
    """Mean of ``|tau - 1(diff < 0)| diff^2`` (``diff`` = Q - V)."""
    weight = torch.where(diff < 0, 1.0 - tau, tau)
    return (weight * diff.square()).mean()


def huber(x: Tensor, delta: float) -> Tensor:
    """Elementwise Huber ``x^2 / 2`` inside ``|x| <= delta``, ``delta (|x| - delta / 2)`` outside."""
    a = x.abs()
    return torch.where(a <= delta, 0.5 * x.square(), delta * (a - 0.5 * delta))


def q_regression_loss(q: Tensor, target: Tensor, huber_delta: float = 0.0) -> Tensor:
    """Sum over the ensemble of the mean regression loss of (E, B) ``q`` to the (B,) ``target``: MSE
    (``huber_delta`` = 0, IQL) or Huber (RIQL)."""
    diff = q - target.unsqueeze(0)
    per = huber(diff, huber_delta) if huber_delta > 0 else diff.square()
    return per.mean(dim=1).sum()


def advantage_weights(advantage: Tensor, beta: float, max_weight: float = 100.0) -> Tensor:
    """``min(exp(beta A), max_weight)``, detached (computed in a way that never overflows)."""
    with torch.no_grad():
        return torch.exp((beta * advantage).clamp(max=float(torch.log(torch.tensor(max_weight)))))


def nstep_return(
    rewards: Tensor, done: Tensor, pad: Tensor, gamma: float, next_is_pad: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(B,) discounted reward sums and (B,) bootstrap discounts ``gamma^n (1 - terminal)``.

    ``rewards``, ``done``, ``pad``: (B, n) of the frames t..t+n-1 (``pad`` True past the episode's end). A frame
    whose ``done`` is set ends the sum after its own reward, and so does the episode's end (``pad``);
    ``next_is_pad`` (B,) True where the observation n frames later lies past the episode's end (no bootstrap from a
    repeated frame, for datasets whose last frame carries no ``done``)."""
    n = rewards.shape[1]
    done = done.bool() | pad.bool()
    ended_before = torch.cumsum(done.float(), dim=1) - done.float() > 0  # an end strictly before step k
    alive = (~ended_before & ~pad.bool()).to(rewards.dtype)
    discounts = gamma ** torch.arange(n, dtype=rewards.dtype, device=rewards.device)
    returns = (rewards * alive * discounts).sum(dim=1)
    terminal = done.any(dim=1)
    if next_is_pad is not None:
        terminal = terminal | next_is_pad.bool()
    terminal = terminal.to(rewards.dtype)
    return returns, (gamma**n) * (1.0 - terminal)
