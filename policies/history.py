"""The observation history a policy conditions on: the last ``n_obs_steps`` observations, oldest first.

One implementation for every place that feeds a policy step by step (``Policy.select_action`` in simulation,
``ember.real.policy_logic`` on an arm), so both see windows built the same way: the first observation of an episode
fills the whole window (as the training windows repeat the first frame), each later one pushes the oldest out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import torch
from torch import Tensor

from ember.policies.errors import PolicyError


class ObservationHistory:
    """Per key, a window of the latest ``n_steps`` tensors shaped (B, ...)."""

    def __init__(self, n_steps: int) -> None:
        if n_steps < 1:
            raise PolicyError(f"an observation history needs n_steps >= 1, got {n_steps}")
        self.n_steps = n_steps
        self._frames: dict[str, deque[Tensor]] = {}

    def __bool__(self) -> bool:
        return bool(self._frames)

    def reset(self) -> None:
        """Forget everything (call at every episode start)."""
        self._frames = {}

    @property
    def batch_size(self) -> int | None:
        for frames in self._frames.values():
            return int(frames[0].shape[0])
        return None

    def push(self, observation: Mapping[str, Tensor]) -> None:
        """Adds one step's tensors (B, ...) per key; the first push of an episode fills the window."""
        sizes = {int(v.shape[0]) for v in observation.values()}
        if self._frames and sizes != {self.batch_size}:
            raise PolicyError(
                "batch size changed between observations; call policy.reset() at each episode start"
            )
        for key, value in observation.items():
            frames = self._frames.get(key)
            if frames is None:
                self._frames[key] = deque([value] * self.n_steps, maxlen=self.n_steps)
            else:
                frames.append(value)

    def window(self) -> dict[str, Tensor]:
        """Each key's window (B, n_steps, ...), a new tensor (safe to hand to another thread)."""
        if not self._frames:
            raise PolicyError("no observation pushed yet")
        return {key: torch.stack(list(frames), dim=1) for key, frames in self._frames.items()}
