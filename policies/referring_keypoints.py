"""Referring keypoints: where in a camera image is the thing the instruction names, and where is it in the world.

The hidden-state decoder of ``hidden_state_decoder="referring_keypoints"``. A camera policy trained on a few
hundred demonstrations sees a few hundred layouts; an MLP over pooled image features then learns *which layout
this is* and recalls where the goal was (docs/design.md, "training-only labels"), and fails on a new layout. This
decoder has almost nothing to memorise with: for each group of hidden dims (``goal_object.*``, ``goal_pad.*``,
``ee.*``) the instruction's embedding becomes a query vector, its dot product with every pixel of the camera's
feature map is a heat map, the heat map's softmax gives one expected image point (u, v); a small MLP maps that
point to the group's dims and reads nothing else, since features taken at the point let it memorise the
training layouts again (bench/vla/RESULTS.md). The backbone
is translation-equivariant and the point-to-world map is one smooth function of (u, v) for a fixed camera, so what
is learnt on one layout carries over to the next.

Its outputs are part of the encoder's feature vector (``width`` columns after the conditioning vectors), so the
checkpoint, tokens and the action head's inputs keep their shapes; the decoder head reads only those columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ember.policies.errors import PolicyError

KEY_DIMS = 32
"""Width of the per-pixel keys the queries are matched against (a 1x1 conv of the feature map)."""


class ReferringKeypoints(nn.Module):
    """(N, C, H, W) feature map + the instruction -> (N, groups * 2) image points in [-1, 1], one per group.

    The instruction is its sentence embedding (N, E), or with ``token_attention`` its contextual token embeddings
    (N, L, E) and mask: each group then pools the words with its own attention (zero-initialised: the mean of the
    words at first) before the pooled vector becomes its queries, so the pad's query can read the pad's colour word.
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        num_groups: int,
        language_dim: int,
        token_attention: bool = False,
    ) -> None:
        super().__init__()
        if num_groups < 1:
            raise PolicyError("referring keypoints need at least one group of hidden dims to decode")
        if token_attention and not language_dim:
            raise PolicyError("token attention over the instruction needs the language embedding dim")
        self.num_groups = num_groups
        self.keys = nn.Conv2d(channels, KEY_DIMS, kernel_size=1)
        # queries start at zero: uniform attention over the image, so every pixel gets a gradient at first
        # (a random query on unnormalised features saturates the softmax on one pixel and never moves)
        self.queries = nn.Parameter(torch.zeros(num_groups, KEY_DIMS))
        """The instruction-free part of each group's query (all of it for the end effector)."""
        self.language_query: nn.Parameter | None = None
        if language_dim:
            self.language_query = nn.Parameter(torch.randn(num_groups, language_dim, KEY_DIMS) * 0.01)
        self.token_attention = bool(token_attention)
        if self.token_attention:
            self.word_keys = nn.Linear(language_dim, KEY_DIMS)
            self.word_queries = nn.Parameter(torch.zeros(num_groups, KEY_DIMS))
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=-1), persistent=False)
        self.width = num_groups * 2

    def group_language(
        self, language: Tensor | None, tokens: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """(N, G, E): what each group reads of the instruction (its word attention's pool, or the sentence)."""
        if self.token_attention:
            if tokens is None or mask is None:
                raise PolicyError(
                    "these referring keypoints attend over the instruction's tokens; none were given"
                )
            logits = torch.einsum("nle,ge->ngl", self.word_keys(tokens), self.word_queries)
            weights = logits.masked_fill(~mask[:, None, :], float("-inf")).softmax(dim=-1)
            return weights @ tokens
        if language is None:
            raise PolicyError("these referring keypoints read the instruction; none was given")
        return language[:, None, :].expand(-1, self.num_groups, -1)

    def forward(
        self,
        features: Tensor,
        language: Tensor | None = None,
        tokens: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        n, _, h, w = features.shape
        if h * w != self.grid.shape[0]:
            raise PolicyError(
                f"referring keypoints were built for a {self.grid.shape[0]}-pixel map, got {h}x{w}"
            )
        queries = self.queries.expand(n, -1, -1)
        if self.language_query is not None:
            words = self.group_language(language, tokens, mask)
            queries = queries + torch.einsum("nge,gek->ngk", words, self.language_query)
        # unit-length keys (times sqrt(KEY_DIMS)): a query's step moves every logit alike, whatever the feature
        # scale, so the attention leaves its uniform start quickly
        keys = torch.nn.functional.normalize(self.keys(features).flatten(2), dim=1) * KEY_DIMS**0.5
        attention = (queries @ keys).softmax(dim=-1)  # (N, G, HW)
        return (attention @ self.grid).flatten(1)  # (N, G*2), group-major


class ReferringDecoder(nn.Module):
    """The hidden-state head over referring keypoints: one small MLP per group, reading only that group's point.

    ``start`` is where the keypoint columns begin in the encoder's feature vector; ``group_sizes`` the number of
    hidden dims of each group, in the encoder's hidden layout order.
    """

    def __init__(self, start: int, group_sizes: Sequence[int], hidden: int = 64) -> None:
        super().__init__()
        self.start = start
        self.group_sizes = tuple(int(s) for s in group_sizes)
        self.step = 2
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Linear(self.step, hidden),
                nn.Mish(),
                nn.Linear(hidden, hidden),
                nn.Mish(),
                nn.Linear(hidden, s),
            )
            for s in self.group_sizes
        )

    def forward(self, features: Tensor) -> Tensor:
        out = []
        for g, head in enumerate(self.heads):
            lo = self.start + g * self.step
            out.append(head(features[:, lo : lo + self.step]))
        return torch.cat(out, dim=-1)


def group_sizes(total: int, sizes: Sequence[int]) -> tuple[int, ...]:
    """The groups of ``total`` hidden dims: ``sizes`` when given (they must add up), else one group per dim."""
    if not sizes:
        return (1,) * total
    if sum(sizes) != total or any(s < 1 for s in sizes):
        raise PolicyError(
            f"hidden_state_groups {list(sizes)} must be positive sizes adding up to the {total} hidden dims"
        )
    return tuple(int(s) for s in sizes)
