"""Exponential moving average of a module's parameters, kept as buffers.

Keeping the shadow weights as buffers (not a second module) means they move with ``.to(device)``, are in
``state_dict`` for resuming, and never reach the optimizer. Inference reads them through
``torch.func.functional_call``, so the trained module itself is never overwritten.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ParameterEMA(nn.Module):
    """Shadow of ``module``'s parameters with decay ``min(max_decay, (1 + n) / (10 + n))`` after n updates.

    The warm-up lets the average follow the fast early changes instead of remembering the random init.
    """

    def __init__(self, module: nn.Module, max_decay: float) -> None:
        super().__init__()
        self.max_decay = max_decay
        self.names = [name for name, _ in module.named_parameters()]
        for name, param in module.named_parameters():
            self.register_buffer(self._buffer_name(name), param.detach().clone())
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _buffer_name(name: str) -> str:
        return "shadow__" + name.replace(".", "__")

    def shadow(self) -> dict[str, Tensor]:
        """``{parameter name: averaged tensor}``, ready for ``functional_call``."""
        return {name: getattr(self, self._buffer_name(name)) for name in self.names}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        n = int(self.num_updates)
        decay = min(self.max_decay, (1 + n) / (10 + n))
        params = [p.detach() for _, p in module.named_parameters()]
        torch._foreach_lerp_(list(self.shadow().values()), params, 1.0 - decay)
        self.num_updates += 1

    @torch.no_grad()
    def copy_from(self, module: nn.Module) -> None:
        """Resets the average to ``module``'s current weights (after loading a checkpoint)."""
        for name, param in module.named_parameters():
            getattr(self, self._buffer_name(name)).copy_(param)
