"""The reference model of the safety-filter fuzzer: :class:`Oracle` checks every decision of
:class:`ember.real.safety.SafetyFilter` against what it promises, computed independently from the config and the
limits, and counts what it saw in :class:`Stats`.

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    SafetyFilter,
)
from ember.real.testing.fuzz_scenarios import Scenario
from ember.real.testing.fuzz_streams import Step

REL = 1e-9
"""Relative slack of the float comparisons (the filter clips to bounds it computes the same way)."""


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
