"""Where the safety-filter fuzzer's randomness comes from (:class:`Source`) and the scenarios it draws from it:
random robots (1-7 arm joints, 0-2 gripper joints, ranges down to 0.01 rad) with random safety configs, and the real
Panda with near-default configs and its MuJoCo forward kinematics. ``ember.real.testing.fuzz`` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ember.real.robot import JointLimits
from ember.real.safety import SafetyConfig


class Source(Protocol):
    """Where every random choice comes from (numpy for the bench, hypothesis for the test)."""

    def integer(self, lo: int, hi: int) -> int:
        """Uniform in ``lo..hi`` inclusive (hypothesis shrinks towards ``lo``)."""
        ...

    def real(self, lo: float, hi: float) -> float:
        """A finite float in ``[lo, hi]``."""
        ...


class NumpySource:
    """A seeded numpy generator as a :class:`Source` (deterministic for a given seed)."""

    def __init__(self, seed: int | Sequence[int]) -> None:
        self.rng = np.random.default_rng(seed)

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def real(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))


def chance(src: Source, p: float) -> bool:
    """True with probability ``p`` (in steps of 1/1000; 0, the shrink target, is False)."""
    return src.integer(0, 999) >= round((1.0 - p) * 1000)


def pick(src: Source, options: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
    """One of ``options`` (the first is the shrink target), with relative ``weights``."""
    if weights is None:
        return options[src.integer(0, len(options) - 1)]
    total = float(sum(weights))
    x = src.integer(0, 9999) / 10000 * total
    for option, w in zip(options, weights, strict=True):
        if x < w:
            return option
        x -= w
    return options[-1]


# ------------------------------------------------------------------------------------------ scenarios
@dataclass
class Scenario:
    """A robot, its safety config and forward kinematics (None: workspace check off)."""

    limits: JointLimits
    config: SafetyConfig
    fk: Callable[[np.ndarray], np.ndarray] | None
    kind: str = "random"


def random_limits(src: Source) -> JointLimits:
    """1-7 arm joints (ranges from 0.01 rad, so the margin is sometimes range/4) and 0-2 gripper joints."""
    n_arm, n_grip = src.integer(1, 7), pick(src, (0, 1, 2), (3, 1, 2))
    lower, upper, vel = [], [], []
    for j in range(n_arm + n_grip):
        grip = j >= n_arm
        lo = src.real(0.0, 0.01) if grip else src.real(-3.2, 1.0)
        width = (
            src.real(0.002, 0.1)
            if grip
            else pick(src, (lambda: src.real(0.5, 6.0), lambda: src.real(0.01, 0.2)), (4, 1))()
        )
        lower.append(lo)
        upper.append(lo + width)
        vel.append(src.real(0.01, 0.5) if grip else src.real(0.05, 3.5))
    dof = n_arm if (n_grip or chance(src, 0.5)) else -1
    names = tuple(f"joint{j}" for j in range(n_arm)) + tuple(f"finger{j}" for j in range(n_grip))
    return JointLimits(
        names=names, lower=np.array(lower), upper=np.array(upper), velocity=np.array(vel), dof=dof
    )


def random_config(src: Source) -> SafetyConfig:
    """Every field of :class:`SafetyConfig`, from tight to loose (zero margin and tolerance included)."""
    low = (src.real(-1.0, 0.0), src.real(-1.0, 0.0), src.real(-0.5, 0.3))
    high = (src.real(0.05, 1.0), src.real(0.05, 1.0), src.real(0.35, 1.5))
    return SafetyConfig(
        command_period_s=pick(src, (0.1, 0.02, 0.5, 0.002)) if chance(src, 0.7) else src.real(0.002, 0.5),
        max_step=src.real(0.005, 1.0),
        velocity_scale=src.real(0.01, 1.0),
        accel_time_s=src.real(0.01, 1.0),
        position_margin=0.0 if chance(src, 0.15) else src.real(0.0, 0.1),
        limit_tolerance=0.0 if chance(src, 0.15) else src.real(0.0, 0.2),
        observation_timeout_ms=src.real(1.0, 1000.0),
        action_timeout_ms=src.real(1.0, 1000.0),
        workspace_low=low,
        workspace_high=high,
        clamp_velocity=not chance(src, 0.15),
    )


def toy_fk(q: np.ndarray) -> np.ndarray:
    """A planar chain (0.3 m links) lifted by the joints' sines: cheap, smooth, any number of joints."""
    a = np.cumsum(q)
    return (
        np.array([0.3 * np.cos(a).sum(), 0.3 * np.sin(a).sum(), 0.5 + 0.1 * np.sin(q).sum()])
        / max(1, q.size) ** 0.5
    )


_PANDA: dict[str, Any] = {}


def panda_scenario(src: Source, *, fk: bool = True) -> Scenario:
    """The real Panda limits (arm + fingers), near-default configs, the real MuJoCo forward kinematics."""
    if not _PANDA:
        from ember.real.robot import ForwardKinematics, joint_limits, load_robot

        spec = load_robot("panda")
        _PANDA.update(limits=joint_limits(spec), fk=ForwardKinematics(spec).ee_position)
    cfg = SafetyConfig(
        command_period_s=pick(src, (0.1, 0.05, 0.02)),
        max_step=pick(src, (0.25, 0.1, 0.05)),
        velocity_scale=pick(src, (0.5, 0.25, 0.05, 1.0)),
        accel_time_s=pick(src, (0.2, 0.1, 0.5)),
        position_margin=pick(src, (0.02, 0.0, 0.05)),
        limit_tolerance=pick(src, (0.05, 0.0, 0.1)),
        observation_timeout_ms=pick(src, (200.0, 50.0)),
        action_timeout_ms=pick(src, (500.0, 100.0)),
        workspace_low=pick(src, ((-0.9, -0.9, 0.02), (-0.6, -0.6, 0.3))),
        workspace_high=pick(src, ((0.9, 0.9, 1.3), (0.8, 0.6, 0.9))),
        clamp_velocity=not chance(src, 0.1),
    )
    return Scenario(_PANDA["limits"], cfg, _PANDA["fk"] if fk else None, kind="panda")


def random_scenario(src: Source, *, panda_share: float = 0.25) -> Scenario:
    if chance(src, panda_share):
        return panda_scenario(src, fk=not chance(src, 0.2))
    limits = random_limits(src)
    return Scenario(limits, random_config(src), toy_fk if chance(src, 0.6) else None)
