"""One check of an action before it reaches the physics, shared by every env: a wrong shape, a non-numeric value or
a NaN is an error naming what was expected; an out-of-range value is clipped to the action space (documented)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from ember.sims.errors import SimError


def checked_action(
    task: str, action: Any, space: spaces.Box, space_type: str, names: Sequence[str]
) -> np.ndarray:
    """``action`` as float64 of ``space``'s shape, clipped to its bounds; raises :class:`SimError` otherwise."""
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SimError(
            f"{task}: action must be a numeric array of shape {space.shape}; got {type(action).__name__}."
        ) from exc
    if a.shape != space.shape:
        raise SimError(
            f"{task}: action has shape {a.shape}, expected {space.shape} ({space_type}: {', '.join(names)})."
        )
    if not np.all(np.isfinite(a)):
        raise SimError(f"{task}: action contains NaN or inf: {a.tolist()}; check the policy's output.")
    return np.clip(a, space.low, space.high)
