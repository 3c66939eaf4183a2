"""The safety filter between any policy and a real arm (pure Python, no ROS).

Every command passes these checks, in this order, before it may reach the controller:

1. e-stop: latched; while engaged nothing passes (reset is an explicit call, never a timeout);
2. watchdog: a measured state must exist (a finite vector of the robot's joints) and the observation (and the
   one the action was computed from) must be fresher than the timeout (an age that is NaN is not fresh);
3. shape and names: exactly the robot's joints; 4. finite: no NaN or inf;
5. joint limits: an arm target beyond a limit by more than ``limit_tolerance`` is rejected (a policy that far
   off is broken); closer ones are clamped, like gripper targets beyond the gripper's travel (which only mean
   "fully open/closed" and are normal for learned policies trained on data at the limit);
6. step: ``|target - measured| <= max_step`` per joint, so a lagging or blocked arm is never yanked (checked
   on the command and again on the final target, which the limiter below may have kept nearer the previous
   command than the measured position);
7. velocity and acceleration, relative to the previous command: *clamped* (a slew limiter, as ros2_control's
   joint_limits saturation does), because small overshoots are normal for learned policies and clamping can
   only make a command gentler; the acceleration is relative to the previous command's velocity (capped at the
   velocity limit) when that command is fresh, else from rest at the measured position;
8. the margin inside the joint limits: clamped (position limits take precedence over 7: where a target is
   cut at the margin, its velocity or deceleration may exceed the limit);
9. workspace: the end-effector position of the final target (forward kinematics) must lie in a box.

A rejected command is never sent: the arm keeps executing the last safe target, which it reaches within one
command period and then holds. Transitions into e-stop or watchdog hold give an explicit hold target.
Every rejection and clamp is counted and logged (rate-limited, so a broken policy cannot flood the log).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ember.real.robot import JointLimits

log = logging.getLogger("ember.safety")

# Rejection reasons (the command is dropped) and clamp reasons (the command is made gentler).
ESTOP = "estop"
STALE_OBSERVATION = "stale_observation"
STALE_ACTION = "stale_action"
NO_OBSERVATION = "no_observation"
MALFORMED = "malformed"
NONFINITE = "nonfinite"
POSITION_LIMIT = "position_limit"
STEP = "step"
WORKSPACE = "workspace"
REJECTIONS = (
    ESTOP,
    STALE_OBSERVATION,
    STALE_ACTION,
    NO_OBSERVATION,
    MALFORMED,
    NONFINITE,
    POSITION_LIMIT,
    STEP,
    WORKSPACE,
)
VELOCITY = "velocity"
ACCELERATION = "acceleration"
MARGIN = "position_margin"
GRIPPER = "gripper_limit"
CLAMPS = (VELOCITY, ACCELERATION, MARGIN, GRIPPER)


@dataclass
class SafetyConfig:
    """Limits beyond the robot's own (which come from ``robots/``)."""

    command_period_s: float = 0.1
    """Nominal time between commands; each command is executed over this time (its ``time_from_start``)."""
    max_step: float = 0.25
    """Largest allowed ``|target - measured position|`` per joint (rad or m); larger jumps are rejected."""
    velocity_scale: float = 0.5
    """Fraction of the robot's joint velocity limits a command may use."""
    accel_time_s: float = 0.2
    """Time to reach the scaled velocity limit from rest; sets the acceleration limit ``v_max / accel_time_s``."""
    position_margin: float = 0.02
    """Arm targets are clamped this far (rad) inside the joint limits."""
    limit_tolerance: float = 0.05
    """Arm targets beyond a joint limit by up to this much (rad) are clamped; further out they are rejected."""
    observation_timeout_ms: float = 200.0
    """Watchdog: without an observation this fresh, hold position and reject commands."""
    action_timeout_ms: float = 500.0
    """Reject actions computed from observations older than this (the policy lags or replays old data)."""
    workspace_low: tuple[float, ...] = (-0.9, -0.9, 0.02)
    """Lower corner (m, robot base frame) of the box the end effector must stay in."""
    workspace_high: tuple[float, ...] = (0.9, 0.9, 1.3)
    clamp_velocity: bool = True
    """Clamp velocity/acceleration violations (True) or reject such commands (False)."""

    def __post_init__(self) -> None:
        for name in (
            "command_period_s",
            "max_step",
            "velocity_scale",
            "accel_time_s",
            "observation_timeout_ms",
            "action_timeout_ms",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"safety.{name} must be positive, got {getattr(self, name)!r}.")
        if self.position_margin < 0 or self.limit_tolerance < 0:
            raise ValueError("safety.position_margin and safety.limit_tolerance must be >= 0.")
        if len(self.workspace_low) != 3 or len(self.workspace_high) != 3:
            raise ValueError("safety.workspace_low/high must be 3-vectors (x, y, z) in metres.")
        if any(lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
            raise ValueError("safety.workspace_low must be below workspace_high on every axis.")


@dataclass(frozen=True)
class Decision:
    """What the filter made of one command: ``target`` is what may be sent (None: send nothing)."""

    target: np.ndarray | None
    rejected: str = ""
    """The rejection reason ('' when the command passed)."""
    clamped: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.target is not None


class _RateLimitedLog:
    """Log the first event of each reason at once, later ones at most once per ``period_s`` with a count."""

    def __init__(self, logger: Callable[[str], None], period_s: float = 1.0) -> None:
        self._log = logger
        self._period = period_s
        self._last: dict[str, float] = {}
        self._pending: Counter[str] = Counter()

    def __call__(self, reason: str, message: str, now: float) -> None:
        self._pending[reason] += 1
        last = self._last.get(reason)
        if last is None or now - last >= self._period:
            n = self._pending.pop(reason)
            suffix = f" ({n} since last report)" if last is not None and n > 1 else ""
            self._log(f"safety: {message}{suffix}")
            self._last[reason] = now


class SafetyFilter:
    """Checks commands for one arm; stateful (previous command, e-stop latch, counters).

    ``fk`` maps a state vector to the end-effector position; None disables the workspace check (and says so).
    """

    def __init__(
        self,
        limits: JointLimits,
        config: SafetyConfig | None = None,
        fk: Callable[[np.ndarray], np.ndarray] | None = None,
        logger: Callable[[str], None] | None = None,
    ) -> None:
        self.limits = limits
        self.config = cfg = config or SafetyConfig()
        self._fk = fk
        if fk is None:
            log.warning("safety: no forward kinematics given; the workspace check is OFF")
        self._names = tuple(limits.names)
        self._order_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._lower, self._upper = limits.lower.astype(float), limits.upper.astype(float)
        # The margin keeps arm joints off their hard stops; a gripper's limits are its travel (fully open is a
        # normal command), so gripper joints get none.
        margin = np.minimum(cfg.position_margin, (self._upper - self._lower) / 4)
        self._gripper = np.zeros(limits.size, dtype=bool)
        if limits.dof >= 0:
            margin[limits.dof :] = 0.0
            self._gripper[limits.dof :] = True
        self._soft_lower, self._soft_upper = self._lower + margin, self._upper - margin
        tol = np.where(self._gripper, np.inf, cfg.limit_tolerance)
        self._reject_lower, self._reject_upper = self._lower - tol, self._upper + tol
        self._vmax = limits.velocity.astype(float) * cfg.velocity_scale
        self._amax = self._vmax / cfg.accel_time_s
        self._ws_low, self._ws_high = (
            np.asarray(cfg.workspace_low, float),
            np.asarray(cfg.workspace_high, float),
        )
        self._report = _RateLimitedLog(logger or log.warning)
        self.counts: Counter[str] = Counter()
        """Rejections and clamps by reason, plus ``passed`` (commands that went out) and ``holds``."""
        self._estop = False
        self._estop_reason = ""
        self._prev: np.ndarray | None = None
        self._prev_vel = np.zeros(limits.size)
        self._prev_time = -math.inf
        self._holding = False

    # ------------------------------------------------------------------------------------------ e-stop
    @property
    def estopped(self) -> bool:
        return self._estop

    def engage_estop(self, reason: str = "e-stop", now: float | None = None) -> None:
        """Latch the e-stop: every later command is rejected until :meth:`reset_estop`."""
        if not self._estop:
            self._report(ESTOP, f"E-STOP engaged ({reason}); holding position", self._now(now))
        self._estop, self._estop_reason = True, reason

    def reset_estop(self) -> None:
        """Release the latch (an operator's explicit decision); motion restarts from the measured position."""
        if self._estop:
            log.warning("safety: e-stop reset")
        self._estop = False
        self._prev = None
        self._prev_vel[:] = 0.0

    # ------------------------------------------------------------------------------------------ checks
    def check(
        self,
        names: Sequence[str] | None,
        positions: Sequence[float] | np.ndarray,
        *,
        measured: np.ndarray | None,
        observation_age_s: float,
        action_age_s: float = 0.0,
        now: float | None = None,
    ) -> Decision:
        """Filter one command. ``names`` None means ``positions`` is in the robot's state order.

        ``measured``: the latest measured state (state order) or None if there is none; ``observation_age_s``:
        its age; ``action_age_s``: age of the observation the action was computed from.
        """
        now = self._now(now)
        cfg = self.config
        if self._estop:
            return self._reject(ESTOP, f"command rejected: e-stop latched ({self._estop_reason})", now)
        if measured is None:
            return self._reject(NO_OBSERVATION, "command rejected: no observation of the arm yet", now)
        measured = self._valid_measured(measured)
        if measured is None:
            return self._reject(
                NO_OBSERVATION,
                f"command rejected: the measured state is not a finite vector of {len(self._names)} joints",
                now,
            )
        if not observation_age_s * 1000.0 <= cfg.observation_timeout_ms:
            return self._reject(
                STALE_OBSERVATION,
                f"command rejected: observation is {observation_age_s * 1e3:.0f} ms "
                f"old (limit {cfg.observation_timeout_ms:.0f} ms)",
                now,
            )
        if not action_age_s * 1000.0 <= cfg.action_timeout_ms:
            return self._reject(
                STALE_ACTION,
                f"command rejected: computed from an observation {action_age_s * 1e3:.0f} "
                f"ms old (limit {cfg.action_timeout_ms:.0f} ms)",
                now,
            )
        raw = self._ordered(names, positions)
        if raw is None:
            return self._reject(
                MALFORMED,
                f"command rejected: joints {list(names or [])[:12]} / "
                f"{np.size(positions)} values do not match {list(self._names)}",
                now,
            )
        if not np.isfinite(raw).all():
            return self._reject(NONFINITE, f"command rejected: non-finite values {raw.tolist()}", now)
        outside = (raw < self._reject_lower) | (raw > self._reject_upper)
        if outside.any():
            j = int(np.argmax(outside))
            return self._reject(
                POSITION_LIMIT,
                f"command rejected: {self._names[j]}={raw[j]:.4f} outside "
                f"[{self._lower[j]:.4f}, {self._upper[j]:.4f}] by more than {cfg.limit_tolerance}",
                now,
            )
        beyond = (raw < self._lower) | (raw > self._upper)
        raw = np.clip(raw, self._lower, self._upper)  # within tolerance: clamp (margin applied below)
        step = np.abs(raw - measured)
        if (step > cfg.max_step).any():
            j = int(np.argmax(step))
            return self._reject(
                STEP,
                f"command rejected: {self._names[j]} jumps {step[j]:.3f} from the measured "
                f"position (max_step {cfg.max_step})",
                now,
            )

        target, clamped, ref = self._limit_motion(raw, measured, now)
        step = np.abs(target - measured)
        if (step > cfg.max_step).any():
            j = int(np.argmax(step))
            return self._reject(
                STEP,
                f"command rejected: {self._names[j]} would be {step[j]:.3f} from the measured "
                f"position after velocity limiting (max_step {cfg.max_step})",
                now,
            )
        if (beyond & ~self._gripper).any() and MARGIN not in clamped:
            clamped = (*clamped, MARGIN)  # clamped to the joint limit (position_margin 0)
        if (beyond & self._gripper).any():
            clamped = (*clamped, GRIPPER)
        if clamped and not cfg.clamp_velocity and (VELOCITY in clamped or ACCELERATION in clamped):
            return self._reject(
                VELOCITY if VELOCITY in clamped else ACCELERATION,
                "command rejected: exceeds velocity/acceleration limits",
                now,
            )
        if self._fk is not None:
            ee = np.asarray(self._fk(target), dtype=float)
            if not ((ee >= self._ws_low) & (ee <= self._ws_high)).all():  # NaN: outside
                return self._reject(
                    WORKSPACE,
                    f"command rejected: end effector at {np.round(ee, 3).tolist()} "
                    f"outside workspace {list(self._ws_low)}..{list(self._ws_high)}",
                    now,
                )
        for reason in clamped:
            self.counts[reason] += 1
        self._accept(target, ref, now)
        return Decision(target=target, clamped=clamped)

    def hold(
        self,
        measured: np.ndarray | None,
        reason: str,
        now: float | None = None,
        prefer_measured: bool = False,
    ) -> np.ndarray | None:
        """Target for an explicit hold: the last safe command (the arm is already going there), or the
        measured position when ``prefer_measured`` (e-stop: stop where it is) or nothing was commanded yet.
        None when neither is known (then send nothing: the controller keeps holding). A measured state that
        is not a finite vector of the robot's joints counts as unknown."""
        now = self._now(now)
        measured = None if measured is None else self._valid_measured(measured)
        target = None
        if prefer_measured and measured is not None:
            target = measured.copy()
        elif self._prev is not None:
            target = self._prev.copy()
        elif measured is not None:
            target = measured.copy()
        if target is not None:
            target = np.clip(target, self._lower, self._upper)
            self.counts["holds"] += 1
            self._prev, self._prev_vel[:], self._prev_time = target.copy(), 0.0, now
        self._holding = True
        log.info("safety: hold (%s)", reason)
        return target

    # ------------------------------------------------------------------------------------------ internals
    @staticmethod
    def _now(now: float | None) -> float:
        return time.monotonic() if now is None else now

    def _valid_measured(self, measured: np.ndarray) -> np.ndarray | None:
        """``measured`` as a float vector of the robot's size, or None if it is not one or not finite."""
        try:
            values = np.asarray(measured, dtype=float)
        except (TypeError, ValueError):
            return None
        return values if values.shape == (len(self._names),) and np.isfinite(values).all() else None

    def _ordered(
        self, names: Sequence[str] | None, positions: Sequence[float] | np.ndarray
    ) -> np.ndarray | None:
        try:
            values = np.asarray(positions, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            return None
        if not names:
            return values if values.size == len(self._names) else None
        key = tuple(names)
        order = self._order_cache.get(key)
        if order is None:
            if len(key) != len(self._names) or set(key) != set(self._names):
                return None
            order = np.array([key.index(n) for n in self._names])
            if len(self._order_cache) < 16:
                self._order_cache[key] = order
        if values.size != order.size:
            return None
        return values[order]

    def _limit_motion(
        self, raw: np.ndarray, measured: np.ndarray, now: float
    ) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
        """Clamp velocity and acceleration relative to the previous command, then into the soft limits.
        Returns the target, the clamp reasons and the reference position it moves from."""
        dt = self.config.command_period_s
        fresh = self._prev is not None and now - self._prev_time <= 1.5 * dt and not self._holding
        ref = self._prev if fresh else np.asarray(measured, float)
        v_prev = self._prev_vel if fresh else np.zeros_like(raw)
        clamped: list[str] = []
        lo_v, hi_v = ref - self._vmax * dt, ref + self._vmax * dt
        lo_a, hi_a = ref + (v_prev - self._amax * dt) * dt, ref + (v_prev + self._amax * dt) * dt
        target = raw
        if ((target < lo_v) | (target > hi_v)).any():
            clamped.append(VELOCITY)
            target = np.clip(target, lo_v, hi_v)
        if ((target < lo_a - 1e-12) | (target > hi_a + 1e-12)).any():
            clamped.append(ACCELERATION)
            target = np.clip(target, lo_a, hi_a)
        if ((target < self._soft_lower) | (target > self._soft_upper)).any():
            clamped.append(MARGIN)
            target = np.clip(target, self._soft_lower, self._soft_upper)
        if clamped:
            self._report(clamped[0], f"command clamped ({', '.join(clamped)})", now)
        return target, tuple(clamped), ref

    def _accept(self, target: np.ndarray, ref: np.ndarray, now: float) -> None:
        # The velocity of this command from where it started (the previous command, or the measured position
        # after a break), capped at the limit: a move the position limits forced must not license the next one.
        dt = self.config.command_period_s
        self._prev_vel = np.clip((target - ref) / dt, -self._vmax, self._vmax)
        self._prev, self._prev_time, self._holding = target.copy(), now, False
        self.counts["passed"] += 1

    def _reject(self, reason: str, message: str, now: float) -> Decision:
        self.counts[reason] += 1
        self._report(reason, message, now)
        return Decision(target=None, rejected=reason)

    def summary(self) -> dict[str, int]:
        """Counts of every reason (zeros included), for status topics and reports."""
        out = {k: int(self.counts.get(k, 0)) for k in ("passed", "holds", *REJECTIONS, *CLAMPS)}
        out["rejected"] = sum(out[k] for k in REJECTIONS)
        return out
