"""Domain randomization, as a typed config: what changes from one episode to the next within a split.

Splits (``ember.sims.splits``) decide *which* colours, shapes, goals and scenes exist; randomization decides how much an
episode may vary inside that set. Pass ``randomization="none" | "default" | "full"``, a :class:`Randomization`, or a
dict of its fields to any tabletop environment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.sims.errors import SimError


@dataclass(frozen=True)
class Randomization:
    object_poses: bool = True
    """Draw object and goal placements per episode (False: every episode uses the nominal layout)."""
    colors: bool = True
    """Shuffle which palette colour each object gets (False: palette order)."""
    lighting: float = 0.0
    """Relative jitter of the key light's intensity and direction (0 = fixed, 0.3 = +-30 %)."""
    camera_pos: float = 0.0
    """Uniform jitter (m) of each fixed camera's position along each axis."""
    camera_rot: float = 0.0
    """Uniform jitter (degrees) of each fixed camera's look-at direction."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.lighting <= 0.9:
            raise SimError(f"randomization.lighting must be in [0, 0.9], got {self.lighting}.")
        if not 0.0 <= self.camera_pos <= 0.1 or not 0.0 <= self.camera_rot <= 15.0:
            raise SimError(
                "randomization.camera_pos must be in [0, 0.1] m and camera_rot in [0, 15] degrees."
            )


PRESETS: dict[str, Randomization] = {
    "none": Randomization(object_poses=False, colors=False),
    "default": Randomization(),
    "full": Randomization(lighting=0.3, camera_pos=0.02, camera_rot=3.0),
}


def resolve_randomization(value: str | Randomization | dict[str, Any] | None) -> Randomization:
    """A :class:`Randomization` from a preset name, a dict of fields or an instance (None = 'default')."""
    if value is None:
        return PRESETS["default"]
    if isinstance(value, Randomization):
        return value
    if isinstance(value, str):
        if value not in PRESETS:
            raise SimError(f"unknown randomization preset '{value}'; valid: {', '.join(PRESETS)}.")
        return PRESETS[value]
    if isinstance(value, dict):
        fields = {f.name for f in dataclasses.fields(Randomization)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise SimError(f"unknown randomization field(s) {unknown}; valid: {', '.join(sorted(fields))}.")
        return Randomization(**value)
    raise SimError(
        f"randomization must be a preset name, a dict or a Randomization, not {type(value).__name__}."
    )


@dataclass(frozen=True)
class Lighting:
    """The key light of one episode (world frame)."""

    direction: tuple[float, float, float]
    diffuse: float


LIGHTING_PRESETS: dict[str, Lighting] = {
    "default": Lighting((-0.3, 0.35, -1.0), 0.5),
    "dim_side": Lighting((0.2, -1.0, -0.45), 0.3),
}


def sample_lighting(preset: str, jitter: float, rng: np.random.Generator) -> Lighting:
    """The split's light, with intensity and direction jittered by up to ``jitter`` (relative)."""
    base = LIGHTING_PRESETS[preset]
    if jitter <= 0:
        return base
    direction = np.asarray(base.direction) + rng.uniform(-jitter, jitter, 3) * np.array([1.0, 1.0, 0.3])
    direction[2] = min(direction[2], -0.2)  # keep it shining downward
    diffuse = base.diffuse * (1.0 + rng.uniform(-jitter, jitter))
    return Lighting(tuple(float(v) for v in direction), float(diffuse))
