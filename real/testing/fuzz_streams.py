"""The safety-filter fuzzer's command streams: a simulated arm that follows the last sent target (with lag,
pushes and sensor faults) and, per event, a command, e-stop, reset or hold with random timing, ages, shapes and
values (:class:`Stream`; every choice from a :class:`~ember.real.testing.fuzz_scenarios.Source`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.real.testing.fuzz_scenarios import Scenario, Source, chance, pick


@dataclass
class Step:
    """One event of a stream: a command (``op == 'check'``), an e-stop, a reset or a hold."""

    op: str
    now: float
    measured: Any = None
    names: Any = None
    positions: Any = None
    observation_age_s: float = 0.0
    action_age_s: float = 0.0
    prefer_measured: bool = False
    kind: str = ""
    """What the generator meant (``track``, ``jump``, ``nan``, ...), for the bench's table."""


def _float32(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # a huge measured value becomes inf: a non-finite command, as meant
        return x.astype(np.float32)


BAD_VALUES = (math.nan, math.inf, -math.inf, 1e300, -1e308, 5e-324)


class Stream:
    """A command stream against a simulated arm that follows the last sent target (with lag, pushes and sensor
    faults); ``next(target_sent)`` gives the next event. Timing: nominal periods with jitter, bursts (same or
    earlier timestamp), gaps, and observation/action ages from fresh to stale, negative (future), NaN and inf."""

    def __init__(self, src: Source, sc: Scenario) -> None:
        self.src, self.sc = src, sc
        lim = sc.limits
        self.n = lim.size
        self.lo, self.hi = lim.lower.astype(float), lim.upper.astype(float)
        self.dt = sc.config.command_period_s
        self.arm = self.lo + (self.hi - self.lo) * np.array([src.real(0.0, 1.0) for _ in range(self.n)])
        if chance(src, 0.2):  # start at or beyond a limit
            j = src.integer(0, self.n - 1)
            self.arm[j] = (self.hi if chance(src, 0.5) else self.lo)[j] + src.real(-0.02, 0.02)
        self.now = src.real(-10.0, 1e4) if chance(src, 0.5) else 0.0
        self.goal = self.arm.copy()
        self.last_cmd = self.arm.copy()
        self.lag = src.real(0.2, 1.0)

    def _age(self, timeout_ms: float) -> float:
        src = self.src
        r = pick(src, ("fresh", "near", "stale", "future", "nan", "inf"), (88, 4, 4, 2, 1, 1))
        t = timeout_ms / 1000.0
        return {
            "fresh": lambda: src.real(0.0, 0.5 * t),
            "near": lambda: t * src.real(0.9, 1.1),
            "stale": lambda: t * src.real(1.0, 50.0),
            "future": lambda: -src.real(0.0, 1.0),
            "nan": lambda: math.nan,
            "inf": lambda: pick(src, (math.inf, -math.inf)),
        }[r]()

    def _measured(self) -> Any:
        src = self.src
        r = pick(
            src,
            ("arm", "noisy", "none", "nonfinite", "outside", "huge", "wrong_size"),
            (85, 6, 2, 2, 3, 1, 1),
        )
        m = self.arm.copy()
        if r == "noisy":
            m = m + np.array([src.real(-0.01, 0.01) for _ in range(self.n)])
        elif r == "none":
            return None
        elif r == "nonfinite":
            m[src.integer(0, self.n - 1)] = pick(src, BAD_VALUES[:3])
        elif r == "outside":
            j = src.integer(0, self.n - 1)
            m[j] = (self.hi if chance(src, 0.5) else self.lo)[j] + src.real(-0.3, 0.3)
        elif r == "huge":
            m[src.integer(0, self.n - 1)] = pick(src, (1e300, -1e300, 1e20))
        elif r == "wrong_size":
            return m[: self.n - 1] if self.n > 1 and chance(src, 0.5) else np.r_[m, 0.0]
        return m

    def _command(self, measured: Any) -> tuple[Any, Any, str]:
        """(names, positions, kind) of a policy's command."""
        src, n, cfg = self.src, self.n, self.sc.config
        base = measured if isinstance(measured, np.ndarray) and measured.shape == (n,) else self.arm
        base = np.where(np.isfinite(base), base, self.arm)
        kind = pick(
            src,
            (
                "track",
                "goal",
                "duplicate",
                "jump",
                "limit",
                "boundary",
                "bad_value",
                "shape",
                "names",
                "type",
            ),
            (30, 25, 6, 6, 9, 8, 5, 4, 4, 3),
        )
        q: Any
        names: Any = None
        if kind == "track":
            s = cfg.max_step * src.real(0.0, 1.2)
            q = base + np.array([src.real(-s, s) for _ in range(n)])
        elif kind == "goal":
            if chance(src, 0.1):
                self.goal = self.lo + (self.hi - self.lo) * np.array(
                    [src.real(-0.05, 1.05) for _ in range(n)]
                )
            step = np.clip(self.goal - base, -cfg.max_step, cfg.max_step) * src.real(0.1, 1.0)
            q = base + step
        elif kind == "duplicate":
            q = self.last_cmd.copy()
        elif kind == "jump":
            q = base.copy()
            j = src.integer(0, n - 1)
            q[j] += pick(src, (1.0, -1.0)) * cfg.max_step * src.real(1.0, 20.0)
        elif kind == "limit":  # around a joint limit, inside and beyond the tolerance
            q = base.copy()
            j = src.integer(0, n - 1)
            up = chance(src, 0.5)
            edge = (self.hi if up else self.lo)[j]
            d = src.real(-0.1, cfg.limit_tolerance * 2.0 + 0.01)
            q[j] = edge + d if up else edge - d
        elif kind == "boundary":  # exactly on a threshold
            q = base.copy()
            j = src.integer(0, n - 1)
            which = pick(src, ("step+", "step-", "tol+", "tol-", "hi", "lo"))
            tol = cfg.limit_tolerance
            q[j] = {
                "step+": base[j] + cfg.max_step,
                "step-": base[j] - cfg.max_step,
                "tol+": self.hi[j] + tol,
                "tol-": self.lo[j] - tol,
                "hi": self.hi[j],
                "lo": self.lo[j],
            }[which]
        elif kind == "bad_value":
            q = base.copy()
            for _ in range(src.integer(1, n)):
                q[src.integer(0, n - 1)] = pick(src, BAD_VALUES)
        elif kind == "shape":
            q = pick(
                src,
                (
                    lambda: base[:-1],
                    lambda: np.r_[base, base[:1]],
                    lambda: np.array([]),
                    lambda: base.reshape(1, n),
                    lambda: np.tile(base, 2),
                ),
            )()
        elif kind == "names":
            order = list(range(n))
            for i in range(n - 1, 0, -1):  # a shuffle through the source
                k = src.integer(0, i)
                order[i], order[k] = order[k], order[i]
            names = [self.sc.limits.names[i] for i in order]
            q = base[order]
            r = pick(
                src, ("shuffled", "missing", "duplicate", "unknown", "extra", "empty"), (5, 1, 1, 1, 1, 1)
            )
            if r == "missing":
                names, q = names[:-1], q[:-1]
            elif r == "duplicate" and n > 1:
                names[-1] = names[0]
            elif r == "unknown":
                names[src.integer(0, n - 1)] = "wrist_cam"
            elif r == "extra":
                names, q = [*names, "extra_joint"], np.r_[q, 0.0]
            elif r == "empty":
                names, q = [], base  # empty names: state order
            kind = f"names_{r}"
        else:  # the container type
            q = pick(
                src,
                (
                    lambda: base.tolist(),
                    lambda: tuple(base.tolist()),
                    lambda: _float32(base),
                    lambda: [str(x) for x in base],
                    lambda: None,
                    lambda: ["a"] * n,
                    lambda: [[float(x)] for x in base],
                ),
            )()
        if kind in ("track", "goal", "jump", "limit", "boundary"):
            self.last_cmd = q.copy()
        return names, q, kind

    def _advance(self) -> None:
        src = self.src
        r = pick(src, ("nominal", "jitter", "burst", "back", "gap"), (60, 25, 7, 3, 5))
        self.now += {
            "nominal": lambda: self.dt,
            "jitter": lambda: self.dt * src.real(0.5, 1.6),
            "burst": lambda: 0.0,
            "back": lambda: -self.dt * src.real(0.0, 3.0),
            "gap": lambda: self.dt * src.real(1.5, 100.0),
        }[r]()

    def _move_arm(self, sent: np.ndarray | None) -> None:
        """The arm follows the last sent target (partly: lag), is sometimes pushed, sometimes blocked."""
        src = self.src
        if sent is not None:
            self.target = sent
        target = getattr(self, "target", None)
        if target is not None and not chance(src, 0.05):  # 5%: blocked this period
            self.arm = self.arm + (target - self.arm) * self.lag
        if chance(src, 0.02):  # pushed (a collision, a person)
            self.arm = self.arm.copy()
            self.arm[src.integer(0, self.n - 1)] += src.real(-0.5, 0.5)

    def next(self, sent: np.ndarray | None) -> Step:
        src, cfg = self.src, self.sc.config
        self._move_arm(sent)
        self._advance()
        r = pick(src, ("check", "estop", "reset", "hold"), (94, 0.5, 3, 2.5))
        if r == "check":
            measured = self._measured()
            names, q, kind = self._command(measured)
            return Step(
                "check",
                self.now,
                measured,
                names,
                q,
                self._age(cfg.observation_timeout_ms),
                self._age(cfg.action_timeout_ms),
                kind=kind,
            )
        if r == "hold":
            return Step("hold", self.now, self._measured(), prefer_measured=chance(src, 0.4), kind="hold")
        return Step(r, self.now, kind=r)
