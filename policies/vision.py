"""Image encoders shared by policies: a backbone, then spatial softmax keypoints (Levine et al., 2016).

Spatial softmax turns a feature map into the expected image coordinates of K learned keypoints, a compact
and translation-aware summary that suits manipulation better than global pooling. Backbones come from
timm with random weights (nothing is downloaded) or from a local checkpoint; BatchNorm is swapped for
GroupNorm because policy batches are small and correlated.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ember.policies.errors import PolicyError


class SmallCNN(nn.Sequential):
    """Four 3x3 conv layers (stride 2, 2, 1, 1): a backbone that trains in seconds on a CPU."""

    def __init__(self, in_channels: int, width: int = 32) -> None:
        layers: list[nn.Module] = []
        channels = [in_channels, width, 2 * width, 2 * width, 2 * width]
        for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            layers += [
                nn.Conv2d(cin, cout, 3, stride=2 if i < 2 else 1, padding=1),
                nn.GroupNorm(8, cout),
                nn.Mish(),
            ]
        super().__init__(*layers)


def replace_batchnorm_with_groupnorm(module: nn.Module, channels_per_group: int = 16) -> nn.Module:
    """In place: every BatchNorm2d(c) becomes GroupNorm(c // channels_per_group, c)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            c = child.num_features
            setattr(module, name, nn.GroupNorm(max(1, c // channels_per_group), c))
        else:
            replace_batchnorm_with_groupnorm(child, channels_per_group)
    return module


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Loads a local checkpoint (safetensors, or a torch state_dict read with weights_only=True).

    Keys the backbone does not have (a classifier head) are dropped; keys it has but the file lacks
    are an error, since a half-initialized backbone would fail silently.
    """
    p = Path(path)
    if not p.is_file():
        raise PolicyError(
            f"pretrained_backbone_path {p} does not exist; download the weights there or unset it"
        )
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(p, map_location="cpu", weights_only=True)
        for wrapper in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
                state = state[wrapper]
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise PolicyError(
            f"{p} lacks backbone weights {missing[:8]} (of {len(missing)}); is it the right model?"
        )
    backbone.load_state_dict({k: v for k, v in state.items() if k in own})


def build_backbone(
    name: str, in_channels: int, pretrained_path: str | None = None, use_group_norm: bool = True
) -> nn.Module:
    """A feature-map backbone (N, C, H, W) -> (N, C', H', W'): ``small_cnn`` or any timm model name."""
    if name == "small_cnn":
        backbone: nn.Module = SmallCNN(in_channels)
    else:
        import timm

        try:
            backbone = timm.create_model(
                name, pretrained=False, num_classes=0, global_pool="", in_chans=in_channels
            )
        except RuntimeError as exc:  # timm raises RuntimeError("Unknown model ...")
            raise PolicyError(
                f"vision_backbone {name!r} is not a timm model ({exc}); try 'resnet18' or 'small_cnn'"
            ) from exc
    if pretrained_path:
        load_backbone_weights(backbone, pretrained_path)
    if use_group_norm:
        replace_batchnorm_with_groupnorm(backbone)
    return backbone


class SpatialSoftmax(nn.Module):
    """(N, C, H, W) -> (N, 2K): expected (x, y) in [-1, 1] of K keypoints, each a softmax over pixels."""

    def __init__(self, in_channels: int, num_keypoints: int, height: int, width: int) -> None:
        super().__init__()
        self.keypoints = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=-1), persistent=False)

    def forward(self, features: Tensor) -> Tensor:
        logits = self.keypoints(features).flatten(2)  # (N, K, H*W)
        attention = logits.softmax(dim=-1)
        return (attention @ self.grid).flatten(1)  # (N, K, 2) -> (N, 2K)


def crop_images(images: Tensor, crop_shape: tuple[int, int], random: bool) -> Tensor:
    """Crops (N, C, H, W) to ``crop_shape``: a random window per image (training) or the center (eval)."""
    n, _, h, w = images.shape
    ch, cw = crop_shape
    if (ch, cw) == (h, w):
        return images
    if not random:
        top, left = (h - ch) // 2, (w - cw) // 2
        return images[:, :, top : top + ch, left : left + cw]
    top = torch.randint(0, h - ch + 1, (n,), device=images.device)
    left = torch.randint(0, w - cw + 1, (n,), device=images.device)
    rows = (top[:, None] + torch.arange(ch, device=images.device))[:, :, None]  # (N, ch, 1)
    cols = (left[:, None] + torch.arange(cw, device=images.device))[:, None, :]  # (N, 1, cw)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return images.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # (N, C, ch, cw)


class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C): the classic pooled feature, for backbones whose channels already mean something."""

    def forward(self, features: Tensor) -> Tensor:
        return features.mean(dim=(2, 3))


class ImageEncoder(nn.Module):
    """Crop -> backbone -> spatial softmax (or average pooling) -> linear + ReLU: (N, C, H, W) -> (N, feature_dim).

    ``extra_channels`` are added to the image's own: conditioning images drawn in the same camera (sketches,
    goal frames) are stacked onto the RGB channels (early fusion), and are cropped with it.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        backbone: str = "resnet18",
        num_keypoints: int = 32,
        crop_shape: tuple[int, int] | None = None,
        pretrained_path: str | None = None,
        use_group_norm: bool = True,
        pooling: str = "spatial_softmax",
        extra_channels: int = 0,
        film_dim: int = 0,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        if crop_shape is not None and (crop_shape[0] > h or crop_shape[1] > w):
            raise PolicyError(
                f"crop_shape {crop_shape} is larger than the images ({h}, {w}); lower crop_shape"
            )
        self.crop_shape = tuple(crop_shape) if crop_shape is not None else None
        c = c + extra_channels
        if pretrained_path and extra_channels:
            raise PolicyError(
                "early-fused conditioning adds input channels, which a pretrained backbone's first layer lacks; "
                "use conditioning_fusion='late' with pretrained_backbone_path"
            )
        self.backbone = build_backbone(backbone, c, pretrained_path, use_group_norm)
        in_h, in_w = self.crop_shape or (h, w)
        with torch.no_grad():
            _, fc, fh, fw = self.backbone(torch.zeros(1, c, in_h, in_w)).shape
        if pooling == "avg":
            self.pool: nn.Module = GlobalAvgPool()
            pooled = fc
        else:
            self.pool = SpatialSoftmax(fc, num_keypoints, fh, fw)
            pooled = 2 * num_keypoints
        self.feature_dim = 2 * num_keypoints
        self.map_shape = (fc, fh, fw)
        """(channels, height, width) of :meth:`feature_map`."""
        self.out = nn.Sequential(nn.Linear(pooled, self.feature_dim), nn.ReLU())
        self.film: nn.Linear | None = None
        if film_dim:  # zero-initialized: the encoder starts as the unconditioned one
            self.film = nn.Linear(film_dim, 2 * fc)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, images: Tensor, film: Tensor | None = None) -> Tensor:
        return self.pooled(self.feature_map(images, film))

    def pooled(self, features: Tensor) -> Tensor:
        """(N, C', H', W') feature map of :meth:`feature_map` -> (N, feature_dim)."""
        return self.out(self.pool(features))

    def feature_map(self, images: Tensor, film: Tensor | None = None) -> Tensor:
        """``film``: (N, film_dim) conditioning (an instruction's embedding) that scales and shifts each feature
        channel before pooling (FiLM, as RT-1 conditions its image tokens on the instruction): the keypoints can
        then follow what the instruction names (the red cube, the blue pad) instead of every object."""
        if self.crop_shape is not None:
            images = crop_images(images, self.crop_shape, random=self.training)
        features = self.backbone(images)
        if self.film is not None:
            if film is None:
                raise PolicyError("this image encoder is FiLM-conditioned on the instruction; none was given")
            scale, bias = self.film(film)[:, :, None, None].chunk(2, dim=1)
            features = features * (1.0 + scale) + bias
        return features
