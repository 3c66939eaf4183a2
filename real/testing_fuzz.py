"""Fuzzing the safety filter: random robots, configs, arm states, timings and command streams, and a reference
model that checks every decision of :class:`ember.real.safety.SafetyFilter` against what it promises.

One generator, two sources of randomness: every random choice goes through a :class:`Source`
(``integer``/``real``/``chance``), so ``tests/test_real_safety_fuzz.py`` drives it with hypothesis (which then
shrinks a failure to a short stream) and ``bench/ros/safety_fuzz.py`` with a seeded numpy generator (10^6
commands). numpy only; hypothesis is imported by the test, never here.

The invariants (checked on every decision; :class:`Oracle` is the reference model):

- a rejected command never reaches the output (``target`` is None, the reason is one of ``REJECTIONS``), and
  the stateless checks reject exactly what they promise, in their documented order (e-stop, no/invalid
  observation, stale observation, stale action, malformed, non-finite, beyond the limit tolerance);
- a command that passes is a finite float vector of the robot's size, inside the joint limits, arm joints
  inside the margin (``min(position_margin, range / 4)``), within ``max_step`` of the measured position;
- velocity: ``|target - ref| <= v_max * dt`` per joint, ``ref`` being the previous command when the chain is
  fresh (accepted within 1.5 periods, no hold or e-stop reset since), else the measured position;
- acceleration: the change from the previous command's velocity (zero when the chain is not fresh) is at most
  ``a_max * dt``;
  both hold on every joint except one whose target sits on a position bound (the margin or the joint limit):
  position limits take precedence (order 7 then 8 in ``real/safety.py``), which shows up as a hard stop
  ("braking at the margin"); those are counted (``position_overrides``), not errors. The velocity bound has no
  exception when ``ref`` lies inside the margin (then clamping into it only shortens the move);
- an unclamped command is sent unchanged; a gripper target beyond its travel is reported as ``gripper_limit``;
- with forward kinematics, the end effector of every target lies in the workspace box;
- hold targets are finite and inside the joint limits (the measured position with ``prefer_measured``, else
  the last safe target, else the measured position, else None);
- the filter's counters match the decisions it returned.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ember.real.robot import JointLimits
from ember.real.safety import (
    ACCELERATION,
    CLAMPS,
    ESTOP,
    GRIPPER,
    MALFORMED,
    NO_OBSERVATION,
    NONFINITE,
    POSITION_LIMIT,
    REJECTIONS,
    STALE_ACTION,
    STALE_OBSERVATION,
    STEP,
    VELOCITY,
    WORKSPACE,
    SafetyConfig,
    SafetyFilter,
)

REL = 1e-9
"""Relative slack of the float comparisons (the filter clips to bounds it computes the same way)."""


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


# ------------------------------------------------------------------------------------------ streams
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


# ------------------------------------------------------------------------------------------ the oracle
@dataclass
class Stats:
    """What a run saw: commands by outcome and reason, violations (with a description each)."""

    scenarios: int = 0
    commands: int = 0
    accepted: int = 0
    clamped: int = 0
    holds: int = 0
    rejected: Counter = field(default_factory=Counter)
    clamps: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    position_overrides: int = 0
    """Accepted commands where a position bound took precedence over the velocity/acceleration bound."""
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0

    def merge(self, other: Stats, keep: int = 20) -> None:
        self.scenarios += other.scenarios
        self.commands += other.commands
        self.accepted += other.accepted
        self.clamped += other.clamped
        self.holds += other.holds
        self.rejected.update(other.rejected)
        self.clamps.update(other.clamps)
        self.kinds.update(other.kinds)
        self.position_overrides += other.position_overrides
        self.violation_count += other.violation_count
        self.violations.extend(other.violations[: max(0, keep - len(self.violations))])


class Oracle:
    """The reference model: what the filter promises, computed independently from the config and the limits."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        cfg, lim = sc.config, sc.limits
        self.cfg, self.n, self.names = cfg, lim.size, tuple(lim.names)
        self.lo, self.hi = lim.lower.astype(float), lim.upper.astype(float)
        self.grip = np.zeros(self.n, bool)
        if lim.dof >= 0:
            self.grip[lim.dof :] = True
        margin = np.where(self.grip, 0.0, np.minimum(cfg.position_margin, (self.hi - self.lo) / 4))
        self.soft_lo, self.soft_hi = self.lo + margin, self.hi - margin
        tol = np.where(self.grip, np.inf, cfg.limit_tolerance)
        self.rej_lo, self.rej_hi = self.lo - tol, self.hi + tol
        self.dt = cfg.command_period_s
        self.vmax = lim.velocity.astype(float) * cfg.velocity_scale
        self.amax = self.vmax / cfg.accel_time_s
        self.estop = False
        self.prev: np.ndarray | None = None
        self.prev_time = -math.inf
        self.prev_vel = np.zeros(self.n)
        self.holding = False
        self.stats = Stats()
        self.expected_counts: Counter = Counter()

    # -- helpers
    def _valid_measured(self, m: Any) -> np.ndarray | None:
        if m is None:
            return None
        a = np.asarray(m, dtype=float)
        return a if a.shape == (self.n,) and np.isfinite(a).all() else None

    def _parse(self, names: Any, positions: Any) -> np.ndarray | None:
        try:
            v = np.asarray(positions, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            return None
        if not names:
            return v if v.size == self.n else None
        if (
            len(names) != self.n
            or len(set(names)) != self.n
            or set(names) != set(self.names)
            or v.size != self.n
        ):
            return None
        by_name = dict(zip(names, v, strict=True))
        return np.array([by_name[k] for k in self.names], dtype=float)

    def _fail(self, msg: str) -> None:
        self.stats.violation_count += 1
        if len(self.stats.violations) < 20:
            self.stats.violations.append(msg)

    def _expected_rejection(self, s: Step, raw: np.ndarray | None) -> str:
        """The first stateless check that must reject this command ('' when none must)."""
        cfg = self.cfg
        if self.estop:
            return ESTOP
        if self._valid_measured(s.measured) is None:
            return NO_OBSERVATION
        if not s.observation_age_s * 1000.0 <= cfg.observation_timeout_ms:
            return STALE_OBSERVATION
        if not s.action_age_s * 1000.0 <= cfg.action_timeout_ms:
            return STALE_ACTION
        if raw is None:
            return MALFORMED
        if not np.isfinite(raw).all():
            return NONFINITE
        if ((raw < self.rej_lo) | (raw > self.rej_hi)).any():
            return POSITION_LIMIT
        return ""

    # -- events
    def observe(self, f: SafetyFilter, s: Step, result: Any) -> np.ndarray | None:
        """Check one event's outcome; returns what was sent to the arm (None: nothing)."""
        if s.op == "estop":
            self.estop = True
            return None
        if s.op == "reset":
            self.estop, self.prev, self.prev_vel = False, None, np.zeros(self.n)
            return None
        if s.op == "hold":
            return self._observe_hold(s, result)
        return self._observe_check(s, result)

    def _observe_hold(self, s: Step, target: np.ndarray | None) -> np.ndarray | None:
        m = self._valid_measured(s.measured)
        expected = m if s.prefer_measured and m is not None else self.prev if self.prev is not None else m
        if expected is None:
            if target is not None:
                self._fail(f"hold: target {target} with neither a valid measurement nor a previous target")
        elif target is None:
            self._fail("hold: no target although one was known")
        else:
            expected = np.clip(expected, self.lo, self.hi)
            if not (np.isfinite(target).all() and target.shape == (self.n,)):
                self._fail(f"hold: non-finite/misshapen target {target}")
            elif not np.array_equal(target, expected):
                self._fail(f"hold: target {target.tolist()} != expected {expected.tolist()}")
            elif ((target < self.lo) | (target > self.hi)).any():
                self._fail(f"hold: target {target.tolist()} outside the joint limits")
            self.prev, self.prev_time, self.prev_vel = target.copy(), s.now, np.zeros(self.n)
            self.stats.holds += 1
            self.expected_counts["holds"] += 1
        self.holding = True
        return target

    def _observe_check(self, s: Step, d: Any) -> np.ndarray | None:
        st = self.stats
        st.commands += 1
        st.kinds[s.kind] += 1
        raw = self._parse(s.names, s.positions)
        must = self._expected_rejection(s, raw)
        if d.rejected:
            st.rejected[d.rejected] += 1
            self.expected_counts[d.rejected] += 1
        if not d.ok:
            if d.target is not None or d.rejected not in (*REJECTIONS, VELOCITY, ACCELERATION):
                self._fail(f"rejection {d.rejected!r} with target {d.target}")
            if must and d.rejected != must:
                self._fail(f"{s.kind}: rejected as {d.rejected!r}, expected {must!r}")
            elif not must and d.rejected not in (STEP, VELOCITY, ACCELERATION, WORKSPACE):
                self._fail(f"{s.kind}: rejected as {d.rejected!r} though every stateless check passes")
            elif d.rejected in (VELOCITY, ACCELERATION) and self.cfg.clamp_velocity:
                self._fail(f"{s.kind}: rejected as {d.rejected!r} with clamp_velocity on")
            elif d.rejected == WORKSPACE and self.sc.fk is None:
                self._fail(f"{s.kind}: rejected for the workspace without forward kinematics")
            return None
        if d.rejected:
            self._fail(f"{s.kind}: a target with rejection reason {d.rejected!r}")
        if must:
            self._fail(
                f"{s.kind}: passed although it must be rejected ({must}): {s.positions!r} "
                f"measured={s.measured!r} ages={s.observation_age_s}/{s.action_age_s}"
            )
            return d.target
        self._check_target(s, raw, d)
        return d.target

    def _check_target(self, s: Step, raw: np.ndarray, d: Any) -> None:
        st, cfg, dt = self.stats, self.cfg, self.dt
        t = d.target
        m = self._valid_measured(s.measured)
        fresh = self.prev is not None and s.now - self.prev_time <= 1.5 * dt and not self.holding
        ref = self.prev if fresh else m
        v_prev = self.prev_vel if fresh else np.zeros(self.n)
        st.accepted += 1
        self.expected_counts["passed"] += 1
        for c in d.clamped:
            st.clamps[c] += 1
            self.expected_counts[c] += 1
        st.clamped += bool(d.clamped)
        bad = []
        if not (isinstance(t, np.ndarray) and t.shape == (self.n,) and t.dtype == np.float64):
            self._fail(f"{s.kind}: target is not a float vector of size {self.n}: {t!r}")
            return
        if not np.isfinite(t).all():
            bad.append("non-finite")
        if ((t < self.lo) | (t > self.hi)).any():
            bad.append("outside the joint limits")
        if ((t < self.soft_lo) | (t > self.soft_hi)).any():
            bad.append("inside the margin")
        if (np.abs(t - m) > cfg.max_step).any():
            bad.append(f"step {np.abs(t - m).max():.4g} from measured > max_step {cfg.max_step:.4g}")
        at_bound = np.isclose(t, self.soft_lo, rtol=0, atol=1e-12) | np.isclose(
            t, self.soft_hi, rtol=0, atol=1e-12
        )
        at_bound |= (t == self.lo) | (t == self.hi)
        ref_inside = (ref >= self.soft_lo) & (ref <= self.soft_hi)
        move = np.abs(t - ref)
        vlim = self.vmax * dt * (1 + REL) + 1e-12
        over_v = move > vlim
        if (over_v & (ref_inside | ~at_bound)).any():
            j = int(np.argmax(over_v & (ref_inside | ~at_bound)))
            bad.append(f"velocity {move[j] / dt:.4g} > {self.vmax[j]:.4g} on joint {j}")
        dv = np.abs((t - ref) - v_prev * dt)
        alim = self.amax * dt * dt * (1 + REL) + 1e-12 + REL * np.abs(v_prev * dt)
        over_a = dv > alim
        if (over_a & ~at_bound).any():
            j = int(np.argmax(over_a & ~at_bound))
            bad.append(f"acceleration {dv[j] / dt / dt:.4g} > {self.amax[j]:.4g} on joint {j}")
        st.position_overrides += bool((over_v | over_a).any())
        grip_out = self.grip & ((raw < self.lo) | (raw > self.hi))
        if grip_out.any() != (GRIPPER in d.clamped):
            bad.append(
                f"gripper_limit reported {GRIPPER in d.clamped}, gripper beyond travel {grip_out.any()}"
            )
        if not d.clamped and not np.array_equal(t, raw):
            bad.append("changed without a clamp reason")
        if any(c not in CLAMPS for c in d.clamped):
            bad.append(f"unknown clamp reason in {d.clamped}")
        if self.sc.fk is not None:
            ee = np.asarray(self.sc.fk(t), float)
            lo, hi = np.asarray(cfg.workspace_low), np.asarray(cfg.workspace_high)
            if not ((ee >= lo) & (ee <= hi)).all():
                bad.append(f"end effector {ee.tolist()} outside the workspace")
        if bad:
            self._fail(
                f"{s.kind}: target {t.tolist()} (command {raw.tolist()}, measured {m.tolist()}, ref "
                f"{ref.tolist()}, fresh {fresh}): " + "; ".join(bad)
            )
        self.prev_vel = np.clip((t - ref) / dt, -self.vmax, self.vmax)
        self.prev, self.prev_time, self.holding = t.copy(), s.now, False

    def finish(self, f: SafetyFilter) -> None:
        """The filter's counters against the decisions it returned."""
        summary = f.summary()
        for key in ("passed", "holds", *REJECTIONS, *CLAMPS):
            if summary[key] != self.expected_counts.get(key, 0):
                self._fail(
                    f"counter {key}: filter says {summary[key]}, decisions say {self.expected_counts.get(key, 0)}"
                )


def run_scenario(
    src: Source, sc: Scenario, n_events: int, filter_cls: type[SafetyFilter] = SafetyFilter
) -> Stats:
    """Drive one filter through ``n_events`` events of a :class:`Stream`, checking each with an :class:`Oracle`
    (``filter_cls``: a subclass, e.g. a deliberately broken one to show the oracle notices)."""
    f = filter_cls(sc.limits, sc.config, fk=sc.fk, logger=lambda msg: None)
    oracle = Oracle(sc)
    stream = Stream(src, sc)
    sent: np.ndarray | None = None
    for _ in range(n_events):
        s = stream.next(sent)
        try:
            if s.op == "check":
                result: Any = f.check(
                    s.names,
                    s.positions,
                    measured=s.measured,
                    observation_age_s=s.observation_age_s,
                    action_age_s=s.action_age_s,
                    now=s.now,
                )
            elif s.op == "hold":
                result = f.hold(s.measured, "fuzz", now=s.now, prefer_measured=s.prefer_measured)
            elif s.op == "estop":
                result = f.engage_estop("fuzz", now=s.now)
            else:
                result = f.reset_estop()
        except Exception as e:  # the filter must decide, never raise (the bridge's callback would die)
            oracle.stats.commands += s.op == "check"
            oracle._fail(f"{s.op} {s.kind}: raised {type(e).__name__}: {e} (measured {s.measured!r})")
            sent = None
            continue
        sent = oracle.observe(f, s, result)
    oracle.finish(f)
    oracle.stats.scenarios = 1
    return oracle.stats


def fuzz(
    commands: int,
    seed: int = 0,
    events_per_scenario: int = 200,
    panda_share: float = 0.25,
    filter_cls: type[SafetyFilter] = SafetyFilter,
    progress: Callable[[Stats], None] | None = None,
) -> Stats:
    """Seeded numpy fuzzing until ``commands`` commands were checked: scenario ``i`` draws from
    ``default_rng([seed, i])``, so any scenario can be replayed alone."""
    total = Stats()
    i = 0
    while total.commands < commands:
        src = NumpySource([seed, i])
        sc = random_scenario(src, panda_share=panda_share)
        total.merge(run_scenario(src, sc, events_per_scenario, filter_cls=filter_cls))
        i += 1
        if progress is not None:
            progress(total)
    return total
