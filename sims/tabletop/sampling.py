"""Seeded placement helpers shared by the tabletop tasks: non-overlapping positions and held-out goal cells.

Held-out goal *locations* use a checkerboard over the table: ``heldout_goal`` draws goal positions from the cells
``train`` never uses, so a policy must interpolate between goal locations it was shown.
"""

from __future__ import annotations

import math

import numpy as np

from ember.sims.errors import SimError
from ember.sims.tabletop.scene import REGION_HIGH, REGION_LOW

GOAL_CELL = 0.06
"""Edge (m) of the checkerboard cells that split goal locations between train and heldout_goal."""


def heldout_cell(xyz: np.ndarray) -> bool:
    """Whether a position lies in a held-out checkerboard cell (parity of the cell indices, z included)."""
    idx = np.floor((np.asarray(xyz, float) - np.r_[REGION_LOW, 0.0][: len(xyz)]) / GOAL_CELL).astype(int)
    return bool(int(idx.sum()) % 2)


def sample_xy(
    rng: np.random.Generator,
    taken: list[np.ndarray],
    min_dist: float,
    low: np.ndarray = REGION_LOW,
    high: np.ndarray = REGION_HIGH,
    heldout: bool | None = None,
    nominal: np.ndarray | None = None,
    failure: str = "could not place every object without overlap; use fewer objects.",
) -> np.ndarray:
    """A table position at least ``min_dist`` from every position in ``taken`` (appended to it); a 3-D one
    (x, y, z) when ``low`` and ``high`` are 3-D.

    ``heldout`` True/False restricts it to held-out/train goal cells (None: anywhere). ``nominal`` (no
    randomization) is returned when it is free. ``failure``: the error when no position is found.
    """
    if nominal is not None and all(np.linalg.norm(nominal - t) >= min_dist for t in taken):
        taken.append(np.asarray(nominal, float))
        return taken[-1]
    for _ in range(1000):
        xy = rng.uniform(low, high)
        if heldout is not None and heldout_cell(xy) != heldout:
            continue
        if all(np.linalg.norm(xy - t) >= min_dist for t in taken):
            taken.append(xy)
            return xy
    raise SimError(failure)


def nominal_grid(n: int, row: float) -> list[np.ndarray]:
    """``n`` evenly spaced positions across the region at depth fraction ``row`` (no-randomization layouts)."""
    ys = np.linspace(REGION_LOW[1], REGION_HIGH[1], n + 2)[1:-1] if n > 0 else []
    x = REGION_LOW[0] + row * (REGION_HIGH[0] - REGION_LOW[0])
    return [np.array([x, y]) for y in ys]


def yaw_quat(yaw: float) -> np.ndarray:
    """wxyz quaternion of a rotation by ``yaw`` about world z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
