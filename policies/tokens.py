"""``ObservationTokens``: what an observation encoder gives every head — tokens, their mask, and a pooled vector.

Diffusion, flow and BC heads read one global conditioning vector (``pooled``); a VLA backbone, a transformer head
or a Q-function over action chunks reads a sequence (``tokens`` with ``mask``). Both come from the same encoder
pass, so every consumer sees the same features:

- one token per (time step, source) of the observation window: the state (all low-dimensional inputs together)
  and each camera, in time order, then one token per conditioning vector (instruction, task embedding,
  keypoints, late-fused conditioning images);
- tokens narrower than the widest are zero-padded to it (``widths`` says how wide each really is, and ``names``
  what it is, so a consumer can project each kind with its own layer);
- ``mask`` (B, N) is True for a token that is present (all are today; sequences of variable length, such as an
  instruction's word pieces, pad with False);
- ``pooled`` (B, P) is the concatenation of every token's real width, time-major, in the same order: the features
  the encoder's ``head_input`` turns into what an action head reads (for most policies exactly this vector; with
  ``conditioning_as_state`` the conditioning part is replaced by the decoded goal, and grounding refines that at
  inference), so checkpoints keep their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ObservationTokens:
    tokens: Tensor
    """(B, N, D) zero-padded to the widest token."""
    mask: Tensor
    """(B, N) bool, True where a token is present."""
    pooled: Tensor
    """(B, P) the concatenation of every token's real width (the global conditioning vector)."""
    names: tuple[str, ...]
    """What each token is (``observation.state@-1`` = the state one step before now, ``language``...)."""
    widths: tuple[int, ...]
    """Each token's real width before padding."""

    @classmethod
    def from_parts(
        cls, per_step: Sequence[tuple[str, Tensor]], extra: Sequence[tuple[str, Tensor]]
    ) -> ObservationTokens:
        """``per_step``: (name, (B, T, D_i)) features of each observation source; ``extra``: (name, (B, D_j))
        conditioning vectors. ``pooled`` is the time-major concatenation of ``per_step`` then ``extra``."""
        pieces: list[tuple[str, Tensor]] = []
        if per_step:
            steps = per_step[0][1].shape[1]
            for t in range(steps):
                offset = t - steps + 1
                pieces += [(f"{name}@{offset}", x[:, t]) for name, x in per_step]
        pieces += list(extra)
        if not pieces:
            raise ValueError("an observation encoder produced no features")
        width = max(x.shape[-1] for _, x in pieces)
        batch = pieces[0][1].shape[0]
        tokens = torch.stack([torch.nn.functional.pad(x, (0, width - x.shape[-1])) for _, x in pieces], dim=1)
        mask = torch.ones(batch, len(pieces), dtype=torch.bool, device=tokens.device)
        pooled = torch.cat([x for _, x in pieces], dim=-1)
        return cls(tokens, mask, pooled, tuple(n for n, _ in pieces), tuple(x.shape[-1] for _, x in pieces))
