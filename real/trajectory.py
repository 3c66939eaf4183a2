"""What ros2_control's joint_trajectory_controller does with a ``JointTrajectory``, for the mock arm.

Semantics kept (positions-only trajectories, the common case for learned policies):

- a new trajectory replaces the active one and starts from the current *setpoint* (no jump);
- between points the setpoint is interpolated linearly in time (JTC's spline for positions only);
- after the last point the controller holds it; an empty trajectory means "stop and hold here";
- joints not named keep their setpoint (partial goals); unknown joints, mismatched sizes, non-increasing
  ``time_from_start`` or non-finite positions make the controller refuse the whole message.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrajectoryPoint:
    time_from_start: float
    positions: Sequence[float]


class TrajectoryFollower:
    """Setpoints over time for the joints ``joint_names``; thread-safe (ROS callback writes, physics reads)."""

    def __init__(self, joint_names: Sequence[str], initial: np.ndarray) -> None:
        self.joint_names = tuple(joint_names)
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self._lock = threading.Lock()
        self._start_time = 0.0
        self._times = np.zeros(1)
        self._knots = np.asarray(initial, dtype=float).reshape(1, -1).copy()
        self.accepted = 0
        self.refused = 0

    def set_trajectory(
        self, names: Sequence[str], points: Sequence[TrajectoryPoint], now: float
    ) -> str | None:
        """Install a trajectory received at ``now``; returns why it was refused, or None."""
        start = self.setpoint(now)
        if not points:
            with self._lock:
                self._start_time, self._times, self._knots = now, np.zeros(1), start.reshape(1, -1)
            self.accepted += 1
            return None
        idx = [self._index.get(n) for n in names]
        if any(i is None for i in idx) or len(set(names)) != len(names):
            self.refused += 1
            return f"unknown or repeated joints {list(names)}; expected a subset of {list(self.joint_names)}"
        times = [0.0]
        knots = [start]
        for p in points:
            if len(p.positions) != len(names):
                self.refused += 1
                return f"a point has {len(p.positions)} positions for {len(names)} joints"
            values = np.asarray(p.positions, dtype=float)
            if not np.all(np.isfinite(values)):
                self.refused += 1
                return "non-finite positions"
            if p.time_from_start <= times[-1]:
                self.refused += 1
                return "time_from_start must be positive and strictly increasing"
            knot = knots[-1].copy()
            knot[idx] = values
            times.append(float(p.time_from_start))
            knots.append(knot)
        with self._lock:
            self._start_time, self._times, self._knots = now, np.array(times), np.stack(knots)
        self.accepted += 1
        return None

    def setpoint(self, now: float) -> np.ndarray:
        """The commanded positions at time ``now``."""
        with self._lock:
            t0, times, knots = self._start_time, self._times, self._knots
        t = now - t0
        if t >= times[-1]:
            return knots[-1].copy()
        if t <= 0:
            return knots[0].copy()
        k = int(np.searchsorted(times, t, side="right"))
        a = (t - times[k - 1]) / (times[k] - times[k - 1])
        return (1.0 - a) * knots[k - 1] + a * knots[k]

    def final_target(self) -> np.ndarray:
        with self._lock:
            return self._knots[-1].copy()


@dataclass
class AuditConfig:
    """What the *arm* considers unsafe, independent of the safety filter's configuration."""

    max_step: float = 0.3
    """Largest ``|first point - measured position|`` per joint (rad or m)."""
    velocity_tolerance: float = 0.05
    """Allowed excess over the robot's velocity limits (fraction)."""
    position_tolerance: float = 1e-6


class CommandAuditor:
    """Counts commands reaching the arm and the unsafe ones among them, by reason (the arm-side ground truth)."""

    def __init__(
        self,
        joint_names: Sequence[str],
        lower: np.ndarray,
        upper: np.ndarray,
        velocity: np.ndarray,
        config: AuditConfig | None = None,
    ) -> None:
        self.joint_names = tuple(joint_names)
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self.lower, self.upper, self.velocity = (np.asarray(a, float) for a in (lower, upper, velocity))
        self.config = config or AuditConfig()
        self.commands = 0
        self.unsafe = 0
        self.reasons: dict[str, int] = {}

    def audit(
        self,
        names: Sequence[str],
        points: Sequence[TrajectoryPoint],
        measured: np.ndarray,
        setpoint: np.ndarray,
        last_target: np.ndarray | None = None,
    ) -> str | None:
        """Check one received trajectory; returns the first unsafe reason (and counts it), or None.

        The first segment's velocity is judged from the most favourable of three starts: the setpoint now, the
        target of the last accepted command (``last_target``) and the measured position. A safe command stream is
        a safe continuation of the previous command (what the bridge's slew limiter guarantees) or a safe move
        from where the arm is (what it guarantees after a break); judged only from the interpolated setpoint, a
        command that arrived a few ms early looked up to twice as fast, and once one was refused the stream and
        the arm's setpoint parted for good: every later command was refused too (found in the soak)."""
        self.commands += 1
        reason = self._check(names, points, measured, setpoint, last_target)
        if reason is not None:
            self.unsafe += 1
            key = reason.split(":")[0]
            self.reasons[key] = self.reasons.get(key, 0) + 1
        return reason

    def _check(
        self,
        names: Sequence[str],
        points: Sequence[TrajectoryPoint],
        measured: np.ndarray,
        setpoint: np.ndarray,
        last_target: np.ndarray | None = None,
    ) -> str | None:
        cfg = self.config
        idx = [self._index.get(n) for n in names]
        if any(i is None for i in idx):
            return f"unknown_joint: {list(names)}"
        starts = [np.asarray(r, float)[idx] for r in (setpoint, last_target, measured) if r is not None]
        prev_t, prev = 0.0, starts[0]
        for n, p in enumerate(points):
            q = np.asarray(p.positions, dtype=float)
            if q.shape != (len(idx),):
                return "malformed: positions size"
            if not np.all(np.isfinite(q)):
                return "nonfinite: NaN or inf position"
            lo, hi = self.lower[idx], self.upper[idx]
            if np.any(q < lo - cfg.position_tolerance) or np.any(q > hi + cfg.position_tolerance):
                return f"position_limit: {q.round(4).tolist()}"
            if n == 0 and np.any(np.abs(q - np.asarray(measured, float)[idx]) > cfg.max_step):
                return "step: first point too far from the measured position"
            dt = p.time_from_start - prev_t
            if dt <= 0:
                return "timing: non-increasing time_from_start"
            speed = np.abs(q - prev) / dt
            if n == 0:  # the most favourable start (see audit)
                speed = min(
                    (np.abs(q - r) / dt for r in starts), key=lambda v: float(np.max(v / self.velocity[idx]))
                )
            if np.any(speed > self.velocity[idx] * (1.0 + cfg.velocity_tolerance)):
                return f"velocity: {speed.round(3).tolist()}"
            prev_t, prev = p.time_from_start, q
        return None

    def summary(self) -> dict[str, object]:
        return {"commands": self.commands, "unsafe": self.unsafe, "unsafe_reasons": dict(self.reasons)}
