"""Mish (x tanh(softplus(x))) with one ``exp`` per element, for the CPU paths where it is a hot op.

torch's CPU kernels compute exp, log1p and tanh per element forward and four transcendentals backward; here
tanh(log(1 + e)) = n / (n + 2) with n = e (e + 2), e = exp(x), so one exp and a few arithmetic passes. At a
diffusion UNet's training activations the transcendentals dominate, so trading them for arithmetic makes Mish's
forward + backward cheaper (measured in bench/compare/RESULTS.md, "The model alone", item 3).
The arithmetic passes cost a dispatch each, so small tensors (a policy's batch-1 inference) keep torch's kernel.
Parameter-free: swapping ``nn.Mish`` for this leaves every state dict unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _exp_and_tanh_softplus(x: Tensor) -> tuple[Tensor, Tensor]:
    e = x.clamp(max=20.0).exp_()  # past 20, n / (n + 2) is 1 in float32 (and exp(2x) would overflow)
    n = e.add(2.0).mul_(e)
    return e, n.div_(n.add(2.0))


class _MishFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # type: ignore[override]
        e, t = _exp_and_tanh_softplus(x)
        ctx.save_for_backward(x, e, t)
        return x * t

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        x, e, t = ctx.saved_tensors
        sigmoid = e.div(e.add(1.0))  # not in place: a retained graph may run backward again
        # d mish / dx = tanh(softplus(x)) + x sigmoid(x) (1 - tanh(softplus(x))^2), torch's mish_backward formula
        slope = torch.addcmul(torch.ones_like(t), t, t, value=-1.0).mul_(sigmoid).mul_(x).add_(t)
        return slope.mul_(grad)


def mish(x: Tensor) -> Tensor:
    """``F.mish``'s values and gradient (within float32 rounding), one-exp on CPU float tensors of at least
    :data:`Mish.MIN_ELEMENTS` elements (a GPU runs torch's kernel as one fused pass: it keeps that)."""
    if (
        x.device.type != "cpu"
        or x.numel() < Mish.MIN_ELEMENTS
        or not x.is_floating_point()
        or x.dtype == torch.float16
    ):
        return F.mish(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _MishFunction.apply(x)
    return x * _exp_and_tanh_softplus(x)[1]  # plain ops: what a TorchScript trace can record and freeze


class Mish(nn.Module):
    """Drop-in ``nn.Mish`` (see the module docstring)."""

    MIN_ELEMENTS = 4096
    """Below this many elements torch's single kernel is faster than the one-exp passes (dispatch-bound)."""

    def forward(self, x: Tensor) -> Tensor:
        return mish(x)
