"""A trivially learnable task the policy tests train on: the state is constant over the window and every action
is ``TARGET @ state``. Shared by the diffusion and the other heads' tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

STATE = "observation.state"
STATE_DIM, ACTION_DIM = 3, 2
TARGET = torch.tensor([[0.8, -0.5, 0.3], [-0.4, 0.6, 0.7]])  # action = TARGET @ state


def linear_batch(config: Any, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
    """One training batch of windows shaped by ``config`` (``n_obs_steps``, ``horizon``)."""
    state = torch.rand(batch_size, STATE_DIM, generator=generator) * 2 - 1
    action = (state @ TARGET.T).clamp(-1, 1)
    return {
        STATE: state[:, None].expand(-1, config.n_obs_steps, -1).clone(),
        "action": action[:, None].expand(-1, config.horizon, -1).clone(),
        "action_is_pad": torch.zeros(batch_size, config.horizon, dtype=torch.bool),
    }


def train(policy: Any, steps: int, lr: float = 2e-3) -> list[float]:
    """``steps`` AdamW steps at batch 64 (seeded); returns the losses and leaves the policy in eval mode."""
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=lr)
    g = torch.Generator().manual_seed(1)
    policy.train()
    losses = []
    for _ in range(steps):
        loss = policy(linear_batch(policy.config, 64, g))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    policy.eval()
    return losses


def padded_loss_of_a_zero_network(policy: Any, monkeypatch: Any) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """The training loss of ``policy`` (a diffusion or flow head) when its network predicts zeros, on a batch whose
    last 3 action steps are padding; returns the loss, the batch and the noise the loss drew (seeded)."""
    batch = linear_batch(policy.config, 8, torch.Generator().manual_seed(0))
    batch["action_is_pad"][:, -3:] = True
    monkeypatch.setattr(policy.model.unet, "forward", lambda sample, t, cond: torch.zeros_like(sample))
    torch.manual_seed(5)
    loss = policy(batch)["loss"]
    torch.manual_seed(5)
    noise = torch.randn_like(batch["action"])  # forward draws the noise first
    return loss, batch, noise


def held_out_error(policy: Any) -> tuple[float, float]:
    """Mean absolute action error of a trained ``policy`` on 16 seeded unseen states, and what predicting the
    dataset mean (0) would score there."""
    g = torch.Generator().manual_seed(123)
    state = torch.rand(16, STATE_DIM, generator=g) * 2 - 1
    target = (state @ TARGET.T).clamp(-1, 1)
    policy.reset()
    torch.manual_seed(0)
    action = policy.select_action({STATE: state})
    return (action - target).abs().mean().item(), target.abs().mean().item()
