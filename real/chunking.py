"""Execute action chunks at a fixed control rate, cross-fading from one chunk into the next.

A chunking policy (diffusion, ACT, pi0...) predicts H future actions from one observation. Executing them open
loop and switching abruptly to the next chunk makes the arm jerk at every switch, because consecutive chunks
disagree a little. Here the next chunk is requested ahead of time (``prefetch_steps`` before the queue runs
dry) and, when it arrives, is aligned with the control steps it was meant for (actions for steps already past
are dropped, so inference latency does not delay the motion) and blended linearly with the remainder of the
current chunk over ``blend_steps`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ChunkConfig:
    n_action_steps: int = 8
    """Actions of each chunk executed before the next chunk takes over (the policy's ``n_action_steps``)."""
    prefetch_steps: int = 2
    """Request the next chunk when this many queued actions remain (hides inference latency)."""
    blend_steps: int = 3
    """Steps over which a new chunk fades in over the remainder of the old one (0: switch at once)."""

    def __post_init__(self) -> None:
        if self.n_action_steps < 1 or self.prefetch_steps < 0 or self.blend_steps < 0:
            raise ValueError("chunk: n_action_steps >= 1, prefetch_steps >= 0 and blend_steps >= 0 required.")


class ChunkExecutor:
    """Queue of future actions indexed by control step. ``step`` is the step the next :meth:`pop` serves."""

    def __init__(self, config: ChunkConfig | None = None) -> None:
        self.config = config or ChunkConfig()
        self.step = 0
        self._queue: list[np.ndarray] = []  # _queue[i] is the action for control step self.step + i
        self.chunks = 0
        self.dropped_actions = 0
        """Actions of new chunks that arrived too late for their step (inference latency)."""
        self.last_action: np.ndarray | None = None

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def wants_chunk(self) -> bool:
        """True when the queue is short enough that the next chunk should be computed now."""
        return len(self._queue) <= self.config.prefetch_steps

    def add_chunk(self, chunk: np.ndarray, start_step: int) -> None:
        """Add a chunk whose row ``i`` is the action for control step ``start_step + i``.

        Only the first ``n_action_steps`` rows are used (the receding horizon); rows for steps already executed
        are dropped; the overlap with queued actions is blended.
        """
        actions = np.asarray(chunk, dtype=np.float64)
        if actions.ndim != 2 or len(actions) == 0:
            raise ValueError(f"a chunk must be (H, A) with H >= 1, got shape {actions.shape}.")
        actions = actions[: self.config.n_action_steps]
        late = self.step - start_step
        if late > 0:
            self.dropped_actions += min(late, len(actions))
            actions = actions[late:]
        elif late < 0:  # a chunk for the future: pad with what is queued (or the last action)
            raise ValueError(f"chunk starts at step {start_step}, after the current step {self.step}.")
        if len(actions) == 0:
            return
        old = self._queue
        blend = min(self.config.blend_steps, len(old), len(actions))
        new: list[np.ndarray] = []
        for i, action in enumerate(actions):
            if i < blend:
                w = (i + 1) / (blend + 1)  # weight of the new chunk rises toward 1
                new.append((1.0 - w) * old[i] + w * action)
            else:
                new.append(action)
        self._queue = new
        self.chunks += 1

    def pop(self) -> np.ndarray | None:
        """The action for the current step (advancing it), or None when the queue ran dry."""
        self.step += 1
        if not self._queue:
            return None
        self.last_action = self._queue.pop(0)
        return self.last_action

    def reset(self) -> None:
        self._queue = []
        self.last_action = None
