"""Property-based fuzzing of the safety filter (hypothesis), CI-sized, plus regression tests for what it found.

The generators and the reference model live in ``real/testing/fuzz*.py`` (``fuzz_oracle.py`` lists the invariants);
``bench/ros/safety_fuzz.py`` drives the same code with a seeded numpy generator for 10^6 commands. Here hypothesis
draws every choice (so a failure shrinks to a short stream); derandomized, no database: the same examples every
run, a few thousand commands in all.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember.real.robot import JointLimits
from ember.real.safety import (
    MARGIN,
    NO_OBSERVATION,
    STALE_ACTION,
    STALE_OBSERVATION,
    STEP,
    WORKSPACE,
    SafetyConfig,
    SafetyFilter,
)
from ember.real.testing.fuzz import fuzz, run_scenario
from ember.real.testing.fuzz_scenarios import panda_scenario, random_scenario

ROOT = Path(__file__).resolve().parents[1]


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        derandomize=True,
        deadline=None,
        database=None,
        print_blob=True,
        max_examples=max_examples,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


class HypothesisSource:
    """Every random choice of ``ember.real.testing.fuzz`` drawn from hypothesis (shrinks towards the first option)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def real(self, lo: float, hi: float) -> float:
        return self.data.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def assert_no_violations(stats) -> None:
    assert stats.violation_count == 0, "\n".join(stats.violations)


@fuzz_settings(60)
@given(st.data())
def test_random_robots_configs_and_streams_keep_every_invariant(data):
    src = HypothesisSource(data)
    stats = run_scenario(src, random_scenario(src, panda_share=0.0), n_events=40)
    assert_no_violations(stats)


@fuzz_settings(25)
@given(st.data())
def test_panda_with_forward_kinematics_keeps_every_invariant(data):
    src = HypothesisSource(data)
    stats = run_scenario(src, panda_scenario(src), n_events=40)
    assert_no_violations(stats)


def test_seeded_numpy_fuzzing_finds_no_violation():
    stats = fuzz(2000, seed=1)
    assert_no_violations(stats)
    assert stats.accepted > 300 and stats.clamped > 100  # the invariants were exercised, not just rejections
    assert {"nonfinite", "malformed", "step", "position_limit", "no_observation"} <= set(stats.rejected)


class _NoFiniteMeasuredCheck(SafetyFilter):
    def _valid_measured(self, measured):
        return np.asarray(measured, dtype=float)


class _ClampsIgnored(SafetyFilter):
    def _limit_motion(self, raw, measured, now):
        _, clamped, ref = super()._limit_motion(raw, measured, now)
        return raw, clamped, ref


@pytest.mark.parametrize("broken", [_NoFiniteMeasuredCheck, _ClampsIgnored])
def test_the_oracle_notices_a_broken_filter(broken):
    """Mutants: the same fuzzing must report violations, or the invariants above would prove nothing."""
    assert fuzz(1500, seed=2, filter_cls=broken).violation_count > 0


def test_the_bench_script_runs(tmp_path):
    out = tmp_path / "fuzz.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench/ros/safety_fuzz.py"), "--commands", "300", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "invariant violations" in r.stdout and '"violations": 0' in out.read_text()


# ------------------------------------------------------------------------------------------ regressions
# Each found by the fuzzing above on the filter as it was; fixed in real/safety.py.
DT = 0.1


def one_joint(**overrides) -> SafetyFilter:
    lim = JointLimits(names=("a",), lower=np.array([-1.0]), upper=np.array([1.0]), velocity=np.array([2.0]))
    cfg = SafetyConfig(
        **{"command_period_s": DT, "max_step": 0.25, "velocity_scale": 0.5, "accel_time_s": 0.2, **overrides}
    )
    return SafetyFilter(lim, cfg, logger=lambda m: None)


def cmd(f: SafetyFilter, q: float, measured, t: float, obs_age: float = 0.0, action_age: float = 0.0):
    return f.check(
        None,
        [q],
        measured=np.atleast_1d(np.asarray(measured, float)),
        observation_age_s=obs_age,
        action_age_s=action_age,
        now=t,
    )


@pytest.mark.parametrize("measured", [[math.nan], [math.inf], [0.0, 0.0], []])
def test_a_measured_state_that_is_not_a_finite_vector_is_no_observation(measured):
    """Was: a NaN measured position disabled the step check (NaN > max_step is False) and the command passed;
    a wrong-size one raised from numpy broadcasting inside the bridge's callback."""
    f = one_joint()
    d = f.check(None, [0.1], measured=np.array(measured), observation_age_s=0.0, now=0.0)
    assert d.rejected == NO_OBSERVATION and d.target is None
    bad = np.array(measured)
    assert (
        f.hold(bad, "watchdog", now=0.0) is None
    )  # nothing known: send nothing (was: a NaN target, or a raise)
    np.testing.assert_array_equal(f.hold(np.array([0.5]), "watchdog", now=0.1), [0.5])
    np.testing.assert_array_equal(
        f.hold(bad, "e-stop", now=0.2, prefer_measured=True), [0.5]
    )  # the last target


@pytest.mark.parametrize("field", ["obs", "action"])
def test_an_age_that_is_nan_is_stale(field):
    """Was: ``nan * 1000 > timeout`` is False, so a NaN age passed the watchdog."""
    f = one_joint()
    d = cmd(f, 0.0, 0.0, 0.0, **{f"{field}_age": math.nan})
    assert d.rejected == (STALE_OBSERVATION if field == "obs" else STALE_ACTION)


def test_velocity_after_a_break_in_the_chain_stays_bounded():
    """Was: after a gap (the previous command stale), the stored velocity was measured from that stale command,
    so the next command got an acceleration window far outside the velocity window: 2x v_max passed."""
    f = one_joint()
    vmax = 1.0  # 2.0 rad/s * velocity_scale 0.5
    assert cmd(f, 0.0, 0.0, 0.0).ok
    d1 = cmd(f, 0.25, 0.2, 1.0)  # a second later; the arm lagged at 0.2
    d2 = cmd(f, 0.5, 0.3, 1.1)
    assert d1.ok and d2.ok
    assert abs(d2.target[0] - d1.target[0]) / DT <= vmax + 1e-9


def test_the_final_target_is_within_max_step_of_the_measured_position():
    """Was: the step check ran on the command only; the slew limiter then kept the target near the previous
    command, which a pushed arm had left far behind (here 0.35 rad from where it now is)."""
    f = one_joint()
    assert cmd(f, 0.0, 0.0, 0.0).ok
    d = cmd(f, 0.4, 0.4, DT)  # pushed to 0.4; the policy follows it
    assert d.rejected == STEP
    d = cmd(f, 0.4, 0.4, 3 * DT)  # the chain has gone stale: motion restarts from the measured position
    assert d.ok and abs(d.target[0] - 0.4) <= 0.25


def test_a_target_clamped_to_the_joint_limit_is_reported_without_a_margin():
    """Was: with ``position_margin=0`` an arm target within the tolerance beyond a limit was clipped silently."""
    f = one_joint(position_margin=0.0, limit_tolerance=0.05)
    d = cmd(f, 1.03, 0.99, 0.0)
    assert d.ok and d.target[0] == 1.0 and MARGIN in d.clamped and f.counts[MARGIN] == 1


def test_a_move_into_the_margin_does_not_license_a_faster_next_move():
    """Was: when the margin clamp pulled an arm that stood in the margin inwards faster than v_max (v_max * dt
    below the margin), the next command's acceleration window started from that speed: over v_max again,
    this time nowhere near a position bound."""
    f = one_joint(
        velocity_scale=0.02, position_margin=0.1, max_step=0.5
    )  # v_max = 0.04 rad/s, margin 0.1 rad
    vmax = 0.04
    d1 = cmd(f, 0.99, 0.99, 0.0)  # the arm stands in the margin: pulled to 0.9 (position first)
    assert d1.ok and d1.target[0] == pytest.approx(0.9)
    d2 = cmd(f, 0.5, 0.99, DT)
    assert d2.ok and abs(d2.target[0] - d1.target[0]) / DT <= vmax + 1e-9


def test_forward_kinematics_that_returns_nan_is_outside_the_workspace():
    lim = JointLimits(names=("a",), lower=np.array([-1.0]), upper=np.array([1.0]), velocity=np.array([2.0]))
    f = SafetyFilter(lim, SafetyConfig(), fk=lambda q: np.full(3, math.nan), logger=lambda m: None)
    assert f.check(None, [0.0], measured=np.zeros(1), observation_age_s=0.0, now=0.0).rejected == WORKSPACE
