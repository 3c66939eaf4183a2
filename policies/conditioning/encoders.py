"""Encoders that turn one conditioning input into a feature vector (late fusion).

Image conditionings fused *early* never come here: they are stacked onto the aligned camera's channels inside the
observation encoder. What comes here is what has no pixel grid to share (language, keypoint coordinates) and image
conditionings of a policy without a camera (or one configured for late fusion).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ember.policies.vision import SmallCNN, SpatialSoftmax


class LanguageProjection(nn.Module):
    """Frozen sentence embedding (B, D) -> (B, out_dim); the only trainable part of language conditioning."""

    def __init__(self, embedding_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(embedding_dim, out_dim), nn.Mish(), nn.Linear(out_dim, out_dim))
        self.out_dim = out_dim

    def forward(self, embedding: Tensor) -> Tensor:
        return self.net(embedding)


class FourierFeatures(nn.Module):
    """x in [0, 1] -> [x, sin(2^k pi x), cos(2^k pi x)]: lets an MLP resolve pixel-level differences of a point."""

    def __init__(self, num_bands: int = 6) -> None:
        super().__init__()
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(num_bands), persistent=False)
        self.num_bands = num_bands

    def out_dim(self, in_dim: int) -> int:
        return in_dim * (1 + 2 * self.num_bands)

    def forward(self, x: Tensor) -> Tensor:
        angles = x[..., None] * self.freqs
        return torch.cat([x, angles.sin().flatten(-2), angles.cos().flatten(-2)], dim=-1)


class KeypointEncoder(nn.Module):
    """(B, K, 2) image coordinates in [0, 1] (KITE's grounded points) -> (B, out_dim)."""

    def __init__(self, num_keypoints: int, out_dim: int) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.fourier = FourierFeatures()
        self.net = nn.Sequential(
            nn.Linear(self.fourier.out_dim(2 * num_keypoints), out_dim),
            nn.Mish(),
            nn.Linear(out_dim, out_dim),
        )
        self.out_dim = out_dim

    def forward(self, keypoints: Tensor) -> Tensor:
        return self.net(self.fourier(keypoints.flatten(1)))


class ConditioningImageEncoder(nn.Module):
    """A conditioning image (B, C, H, W) -> (B, out_dim), late fusion: its own narrow CNN and spatial softmax.

    A sketch is sparse strokes on black, far simpler than a camera image, so a narrow network (``width`` 16) on an
    optionally average-pooled copy (``pool``) reads it at a fraction of a camera backbone's cost; spatial softmax
    keeps what matters in a sketch, *where* its strokes and marks are.
    """

    def __init__(
        self, channels: int, size: tuple[int, int], out_dim: int, width: int = 16, pool: int = 1
    ) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(pool) if pool > 1 else nn.Identity()
        self.backbone = SmallCNN(channels, width)
        h, w = size[0] // pool, size[1] // pool
        with torch.no_grad():
            _, fc, fh, fw = self.backbone(torch.zeros(1, channels, h, w)).shape
        self.keypoints = SpatialSoftmax(fc, max(8, out_dim // 2), fh, fw)
        self.proj = nn.Sequential(
            nn.Linear(2 * max(8, out_dim // 2), out_dim), nn.Mish(), nn.Linear(out_dim, out_dim)
        )
        self.out_dim = out_dim

    def forward(self, image: Tensor) -> Tensor:
        return self.proj(self.keypoints(self.backbone(self.pool(image))))
