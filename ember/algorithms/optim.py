"""Optimizer settings every algorithm reads (``ember train --optim.*``) and the schedule they share."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay (diffusion policy's recipe)."""

    lr: float = 1e-3
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.95, 0.999)
    grad_clip_norm: float = 10.0
    """Clip each optimizer's gradient norm to this (0 = no clipping)."""
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0


def _as_list(params: Any) -> list[torch.Tensor]:
    return [params] if isinstance(params, torch.Tensor) else list(params)


FUSED_DEVICES = ("cpu", "cuda")
"""Devices whose fused AdamW kernel torch ships (the whole update in one pass over each parameter)."""


def adamw(
    params: Iterable[torch.nn.Parameter] | Iterable[dict], cfg: OptimConfig, lr: float | None = None
) -> torch.optim.AdamW:
    """AdamW with ``cfg``'s settings (``lr`` overrides the learning rate, e.g. for a critic).

    The update runs fused (one kernel per parameter) where torch has that kernel, else grouped (``foreach``). On
    CPU, torch would otherwise loop over the parameters in Python, op by op, which costs several times the fused
    update on a diffusion UNet's many small tensors (measured in bench/compare/RESULTS.md, "The model alone",
    item 2)."""
    params = [
        {**g, "params": _as_list(g["params"])} if isinstance(g, dict) else g for g in params
    ]  # read twice
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    fused = bool(tensors) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in tensors)
    return torch.optim.AdamW(
        params,
        lr=cfg.lr if lr is None else lr,
        betas=cfg.betas,
        weight_decay=cfg.weight_decay,
        **({"fused": True} if fused else {"foreach": True}),
    )


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``cfg.warmup_steps``, then cosine decay to ``cfg.min_lr_ratio`` at ``total`` steps."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / max(1, cfg.warmup_steps)
        progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
