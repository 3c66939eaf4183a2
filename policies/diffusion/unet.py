"""A conditional 1-D temporal UNet with FiLM, sized for short action chunks (horizon 8-16).

diffusers' ``UNet1DModel`` needs chunks of ~64 steps (three fixed downsamplings), so this is written for
the diffusion-policy use: the chunk is a (channels=A, length=horizon) signal, each residual block is
Conv1d -> GroupNorm -> Mish twice, and the conditioning vector (diffusion-step embedding + observation
features) modulates the first conv's output with a per-channel scale and bias (FiLM).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ember.policies.activations import Mish


class SinusoidalStepEmbedding(nn.Module):
    """Diffusion step t (B,) -> (B, dim) of sines/cosines at geometric frequencies (Transformer-style)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        angles = t.float()[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad.contiguous()


class PointwiseConv1d(nn.Linear):
    """A 1x1 Conv1d computed as a matmul over channels: same math, and on CPU a matmul beats oneDNN's 1x1 conv at
    these sizes.

    The transposes hand the input a gradient with transposed strides. Summed into the residual block's input
    gradient, it reached the previous block's Mish, whose CPU backward is much slower on mixed strides, so the
    input's gradient is made contiguous here instead (both measured in bench/infer/RESULTS.md, "UNet kernels")."""

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad and torch.is_grad_enabled():
            x = _ContiguousGrad.apply(x)
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class FastConv1d(nn.Conv1d):
    """``nn.Conv1d`` (same weights, same results) that runs small inference batches as one matmul (im2col).

    At batch 1 torch's CPU conv1d takes its slow non-oneDNN path, and unfold + matmul is several times faster
    (measured in bench/infer/RESULTS.md, "UNet kernels"). Inference of a diffusion policy is many such calls
    (10 DDIM steps x ~30 convs), so this is most of its latency. Training batches keep the conv kernel,
    which is faster there.
    """

    SMALL = 256
    """Use the matmul path when batch x length is at most this and no gradient is needed."""

    def forward(self, x: Tensor) -> Tensor:
        b, _, length = x.shape
        if torch.is_grad_enabled() or b * length > self.SMALL or self.groups != 1 or self.dilation != (1,):
            return super().forward(x)
        k, s, p = self.kernel_size[0], self.stride[0], self.padding[0]  # type: ignore[index]
        cols = F.pad(x, (p, p)).unfold(2, k, s)  # (B, C, L_out, k)
        out = cols.permute(0, 2, 1, 3).flatten(2) @ self.weight.flatten(1).T  # (B, L_out, C_out)
        if self.bias is not None:
            out = out + self.bias
        return out.transpose(1, 2)


class ConvBlock(nn.Sequential):
    """Same-length Conv1d -> GroupNorm -> Mish."""

    def __init__(self, cin: int, cout: int, kernel_size: int, n_groups: int) -> None:
        super().__init__(
            FastConv1d(cin, cout, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, cout),
            Mish(),
        )


class FiLMResBlock(nn.Module):
    """Two conv blocks with FiLM between them and a (1x1 conv if needed) residual path.

    FiLM uses ``h * (1 + scale) + bias`` so a zero-initialized modulation starts as the identity.
    """

    def __init__(self, cin: int, cout: int, cond_dim: int, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.block1 = ConvBlock(cin, cout, kernel_size, n_groups)
        self.block2 = ConvBlock(cout, cout, kernel_size, n_groups)
        self.film = nn.Sequential(Mish(), nn.Linear(cond_dim, 2 * cout))
        self.residual = PointwiseConv1d(cin, cout) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale, bias = self.film(cond)[:, :, None].chunk(2, dim=1)
        h = self.block1(x) * (1.0 + scale) + bias
        return self.block2(h) + self.residual(x)


class _Level(nn.Module):
    def __init__(
        self, cin: int, cout: int, n_blocks: int, cond_dim: int, kernel_size: int, n_groups: int
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            FiLMResBlock(cin if i == 0 else cout, cout, cond_dim, kernel_size, n_groups)
            for i in range(n_blocks)
        )

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, cond)
        return x


class ConditionalUnet1D(nn.Module):
    """Noise (or sample) predictor: (B, T, A) noisy chunk, (B,) step, (B, G) global cond -> (B, T, A).

    Levels ``down_dims[i]`` work at length ``T / 2**i`` (strided-conv downsampling); the up path upsamples
    (nearest), concatenates the skip of the same length, and mirrors the down path. ``T`` must be a multiple of ``2**(len(down_dims) - 1)``.
    """

    def __init__(
        self,
        action_dim: int,
        global_cond_dim: int,
        down_dims: tuple[int, ...] = (64, 128, 256),
        kernel_size: int = 5,
        n_groups: int = 8,
        step_embed_dim: int = 128,
        blocks_per_level: int = 1,
    ) -> None:
        super().__init__()
        self.step_encoder = nn.Sequential(
            SinusoidalStepEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        cond_dim = step_embed_dim + global_cond_dim
        level = dict(n_blocks=blocks_per_level, cond_dim=cond_dim, kernel_size=kernel_size, n_groups=n_groups)
        dims = list(down_dims)
        self.down = nn.ModuleList(
            _Level(cin, cout, **level) for cin, cout in zip([action_dim] + dims[:-1], dims, strict=True)
        )
        self.downsample = nn.ModuleList(FastConv1d(d, d, 3, stride=2, padding=1) for d in dims[:-1])
        self.mid = _Level(dims[-1], dims[-1], **level)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")  # the next block's convs do the learning
        self.up = nn.ModuleList(_Level(dims[i + 1] + dims[i], dims[i], **level) for i in range(len(dims) - 1))
        self.head = nn.Sequential(
            ConvBlock(dims[0], dims[0], kernel_size, n_groups), PointwiseConv1d(dims[0], action_dim)
        )

    def forward(self, sample: Tensor, timestep: Tensor, global_cond: Tensor) -> Tensor:
        cond = torch.cat([self.step_encoder(timestep), global_cond], dim=-1)
        x = sample.transpose(1, 2)  # (B, A, T): channels are action dims, length is time
        skips: list[Tensor] = []
        for i, level in enumerate(self.down):
            x = level(x, cond)
            if i < len(self.downsample):
                skips.append(x)
                x = self.downsample[i](x)
        x = self.mid(x, cond)
        for i in reversed(range(len(self.up))):
            x = self.up[i](torch.cat([self.upsample(x), skips[i]], dim=1), cond)
        return self.head(x).transpose(1, 2)
