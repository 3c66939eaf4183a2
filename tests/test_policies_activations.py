"""ember.policies.activations.Mish: nn.Mish's values and gradients on every path it takes (one-exp with autograd, one-exp
as plain ops under no_grad, torch's kernel for small tensors), and a TorchScript trace that freezes without Python."""

import torch

from ember.policies.activations import Mish


def test_mish_is_torch_mish_to_float_rounding() -> None:
    """The one-exp Mish against the float64 function and nn.Mish: values and gradients, tails included."""
    x32 = torch.cat(
        [
            torch.linspace(-120.0, 120.0, 200_001),
            torch.randn(100_000, generator=torch.Generator().manual_seed(0)) * 4,
        ]
    )
    x64 = x32.double().requires_grad_(True)  # the float64 function at the very float32 inputs
    (x64 * torch.tanh(torch.nn.functional.softplus(x64))).sum().backward()
    ref, ref_grad = (x64 * torch.tanh(torch.nn.functional.softplus(x64))).detach(), x64.grad
    outs = {}
    for name, fn in (("torch", torch.nn.Mish()), ("critics", Mish())):
        x = x32.clone().requires_grad_(True)
        y = fn(x)
        y.sum().backward()
        outs[name] = (y.detach().double(), x.grad.double())
    for y, grad in outs.values():
        assert torch.isfinite(y).all() and torch.isfinite(grad).all()
        normal = ref.abs() > 1e-30  # below, float32 results are (near-)denormal: an absolute bound
        assert float(((y - ref).abs() / ref.abs())[normal].max()) < 5e-7
        assert float((y - ref).abs()[~normal].max()) < 1e-36
        assert float((grad - ref_grad).abs().max()) < 3e-6
    torch.testing.assert_close(outs["critics"][0], outs["torch"][0], rtol=5e-7, atol=1e-6)
    torch.testing.assert_close(outs["critics"][1], outs["torch"][1], rtol=1e-6, atol=3e-6)


def test_mish_paths_agree_and_trace_to_plain_ops() -> None:
    x = torch.randn(8, 64, 16, generator=torch.Generator().manual_seed(1)) * 3
    ref = torch.nn.functional.mish(x)
    big = x.clone().requires_grad_(True)
    y = Mish()(big)
    assert y.grad_fn is not None and "MishFunction" in type(y.grad_fn).__name__  # the one-exp autograd path
    with torch.no_grad():
        plain = Mish()(x)
    small = Mish()(x[:1, :2])  # under MIN_ELEMENTS: torch's own kernel
    torch.testing.assert_close(y.detach(), ref, rtol=5e-7, atol=1e-6)
    torch.testing.assert_close(plain, ref, rtol=5e-7, atol=1e-6)
    torch.testing.assert_close(small, ref[:1, :2], rtol=0, atol=0)
    with torch.no_grad():
        frozen = torch.jit.freeze(
            torch.jit.trace(torch.nn.Sequential(Mish()).eval(), (x,), check_trace=False)
        )
    assert "PythonOp" not in str(frozen.graph) and "_MishFunction" not in str(frozen.graph)
    torch.testing.assert_close(frozen(x), ref, rtol=5e-7, atol=1e-6)


def test_mish_backward_twice_on_a_retained_graph() -> None:
    """backward must not overwrite what it saved: a retained graph runs it again to the same gradient."""
    x = torch.randn(64, 128, requires_grad=True, generator=torch.Generator().manual_seed(2))
    y = Mish()(x).sum()
    (g1,) = torch.autograd.grad(y, x, retain_graph=True)
    (g2,) = torch.autograd.grad(y, x)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
