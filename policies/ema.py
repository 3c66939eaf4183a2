"""Exponential moving average of a module's trainable parameters, kept as buffers.

The EMA is its own object, owned by the training algorithm and updated after each optimizer step (never inside a
policy's ``forward``). Keeping the shadow weights as buffers (not a second module) means they move with
``.to(device)``, are in ``state_dict`` for resuming, and never reach the optimizer. ``swapped_into`` lends them
to the module for saving or evaluating, then gives the training weights back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


class ParameterEMA(nn.Module):
    """Shadow of ``module``'s trainable parameters with decay ``min(max_decay, (1 + n) / (10 + n))`` after n
    updates. The warm-up lets the average follow the fast early changes instead of remembering the random init."""

    def __init__(self, module: nn.Module, max_decay: float) -> None:
        super().__init__()
        if not 0.0 < max_decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {max_decay}")
        self.max_decay = max_decay
        self.names = [name for name, p in module.named_parameters() if p.requires_grad]
        params = dict(module.named_parameters())
        for name in self.names:
            self.register_buffer(self._buffer_name(name), params[name].detach().clone())
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _buffer_name(name: str) -> str:
        return "shadow__" + name.replace(".", "__")

    def shadow(self) -> dict[str, Tensor]:
        """``{parameter name: averaged tensor}``."""
        return {name: getattr(self, self._buffer_name(name)) for name in self.names}

    def _params(self, module: nn.Module) -> list[Tensor]:
        params = dict(module.named_parameters())
        return [params[name] for name in self.names]

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Folds ``module``'s current weights into the average (call after the optimizer step)."""
        n = int(self.num_updates)
        decay = min(self.max_decay, (1 + n) / (10 + n))
        params = [p.detach() for p in self._params(module)]
        torch._foreach_lerp_(list(self.shadow().values()), params, 1.0 - decay)
        self.num_updates += 1

    @contextlib.contextmanager
    def swapped_into(self, module: nn.Module) -> Iterator[nn.Module]:
        """``module`` runs (or is saved with) the averaged weights inside the block; its own come back after."""
        params = self._params(module)
        kept = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, shadow in zip(params, self.shadow().values(), strict=True):
                p.copy_(shadow)
        try:
            yield module
        finally:
            with torch.no_grad():
                for p, saved in zip(params, kept, strict=True):
                    p.copy_(saved)
