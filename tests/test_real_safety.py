"""The safety filter, in isolation (pure Python, the real Panda limits and forward kinematics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ember.real.robot import ForwardKinematics, home_state, joint_limits, load_robot
from ember.real.safety import (
    ACCELERATION,
    ESTOP,
    GRIPPER,
    MALFORMED,
    MARGIN,
    NO_OBSERVATION,
    NONFINITE,
    POSITION_LIMIT,
    STALE_ACTION,
    STALE_OBSERVATION,
    STEP,
    VELOCITY,
    WORKSPACE,
    SafetyConfig,
    SafetyFilter,
)

DT = 0.1


@pytest.fixture(scope="module")
def robot():
    return load_robot("panda")


@pytest.fixture(scope="module")
def fk(robot):
    return ForwardKinematics(robot)


def make_filter(robot, fk=None, **overrides):
    cfg = SafetyConfig(command_period_s=DT, **overrides)
    return SafetyFilter(
        joint_limits(robot), cfg, fk=None if fk is None else fk.ee_position, logger=lambda m: None
    )


def arm_offset(robot, delta: float) -> np.ndarray:
    """``delta`` on every arm joint, 0 on the fingers (which sit at their open limit at home)."""
    return np.r_[np.full(robot.dof, delta), np.zeros(len(robot.state_names) - robot.dof)]


def check(f, q, measured, t, **kw):
    kw.setdefault("observation_age_s", 0.01)
    return f.check(None, q, measured=measured, now=t, **kw)


def test_a_small_step_passes_unchanged(robot, fk):
    f = make_filter(robot, fk)
    home = home_state(robot)
    target = home + arm_offset(robot, 0.01)
    d = check(f, target, home, 0.0)
    assert d.ok and not d.clamped
    np.testing.assert_allclose(d.target, target)
    assert f.summary()["passed"] == 1 and f.summary()["rejected"] == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_values_are_rejected(robot, bad):
    f = make_filter(robot)
    home = home_state(robot)
    q = home.copy()
    q[3] = bad
    d = check(f, q, home, 0.0)
    assert not d.ok and d.rejected == NONFINITE and f.counts[NONFINITE] == 1


def test_targets_beyond_joint_limits_are_rejected_or_clamped(robot):
    f = make_filter(robot, limit_tolerance=0.05, position_margin=0.02)
    lim = joint_limits(robot)
    measured = lim.upper.copy()
    measured[: robot.dof] -= 0.05
    q = measured.copy()
    q[0] = lim.upper[0] + 0.06  # beyond the tolerance (and within max_step of the measured position)
    d = check(f, q, measured, 0.0)
    assert d.rejected == POSITION_LIMIT and f.counts[POSITION_LIMIT] == 1
    q[0] = lim.upper[0] + 0.04  # within the tolerance: clamped inside the margin
    d = check(f, q, measured, 0.0)
    assert d.ok and MARGIN in d.clamped and d.target[0] == pytest.approx(lim.upper[0] - 0.02)


def test_gripper_targets_beyond_the_travel_are_clamped(robot):
    f = make_filter(robot)
    home = home_state(robot)
    q = home.copy()
    q[robot.dof :] = robot.gripper_upper + 0.3  # "open fully", whatever the number
    d = check(f, q, home, 0.0)
    assert d.ok and GRIPPER in d.clamped
    np.testing.assert_allclose(d.target[robot.dof :], robot.gripper_upper)


def test_targets_inside_the_margin_are_clamped_to_it(robot):
    f = make_filter(robot, position_margin=0.02)
    lim = joint_limits(robot)
    measured = (lim.lower + lim.upper) / 2
    measured[0] = lim.upper[0] - 0.03
    q = measured.copy()
    q[0] = lim.upper[0] - 0.005
    d = check(f, q, measured, 0.0)
    assert d.ok and MARGIN in d.clamped
    assert d.target[0] == pytest.approx(lim.upper[0] - 0.02)


def test_gripper_may_be_commanded_fully_open(robot):
    f = make_filter(robot, position_margin=0.02)
    home = home_state(robot)  # fingers fully open = their upper limit
    d = check(f, home, home, 0.0)
    assert d.ok and MARGIN not in d.clamped
    np.testing.assert_allclose(d.target[robot.dof :], robot.gripper_upper)


def test_jumps_beyond_max_step_are_rejected_not_clamped(robot):
    f = make_filter(robot, max_step=0.25)
    home = home_state(robot)
    q = home.copy()
    q[1] += 0.3
    d = check(f, q, home, 0.0)
    assert d.rejected == STEP and d.target is None


def test_velocity_and_acceleration_are_clamped(robot):
    f = make_filter(robot, max_step=0.25, velocity_scale=0.5, accel_time_s=0.2)
    lim = joint_limits(robot)
    vmax = lim.velocity * 0.5
    amax = vmax / 0.2
    home = home_state(robot)
    q = home.copy()
    q[0] += 0.2  # within max_step but faster than the scaled velocity limit allows in one period
    d = check(f, q, home, 0.0)
    assert d.ok and ACCELERATION in d.clamped  # from rest, acceleration binds first
    assert d.target[0] - home[0] == pytest.approx(amax[0] * DT * DT)
    # keep asking: speed grows by at most amax*dt per period and never exceeds vmax
    t, prev, speeds = 0.0, d.target.copy(), []
    for _ in range(8):
        t += DT
        d = check(f, prev + 0.2 * np.eye(len(prev))[0], prev, t)
        assert d.ok
        speeds.append((d.target[0] - prev[0]) / DT)
        prev = d.target.copy()
    assert max(speeds) == pytest.approx(vmax[0])
    assert np.all(np.diff(speeds) <= amax[0] * DT + 1e-9)
    assert f.counts[VELOCITY] > 0 and f.counts[ACCELERATION] > 0


def test_clamping_can_be_turned_into_rejection(robot):
    f = make_filter(robot, clamp_velocity=False)
    home = home_state(robot)
    q = home.copy()
    q[0] += 0.2
    d = check(f, q, home, 0.0)
    assert not d.ok and d.rejected in (VELOCITY, ACCELERATION)


def test_workspace_bounds_use_forward_kinematics(robot, fk):
    home = home_state(robot)
    ee = fk.ee_position(home)
    f = make_filter(robot, fk, workspace_low=(-1.0, -1.0, ee[2] - 0.01), workspace_high=(1.0, 1.0, 2.0))
    q = home.copy()
    q[3] -= 0.05  # the elbow folds: the hand drops ~2 cm
    assert fk.ee_position(q)[2] < ee[2] - 0.01
    d = check(f, q, home, 0.0)
    assert d.rejected == WORKSPACE
    assert check(f, home, home, 0.0).ok


def test_watchdog_and_stale_actions(robot):
    f = make_filter(robot, observation_timeout_ms=200.0, action_timeout_ms=500.0)
    home = home_state(robot)
    assert check(f, home, home, 0.0, observation_age_s=0.25).rejected == STALE_OBSERVATION
    assert check(f, home, home, 0.0, action_age_s=0.6).rejected == STALE_ACTION
    assert f.check(None, home, measured=None, observation_age_s=math.inf, now=0.0).rejected == NO_OBSERVATION
    assert check(f, home, home, 0.0, observation_age_s=0.19, action_age_s=0.49).ok


def test_names_are_matched_in_any_order_and_checked(robot):
    f = make_filter(robot)
    home = home_state(robot)
    names = list(robot.state_names)
    d = f.check(names[::-1], home[::-1], measured=home, observation_age_s=0.0, now=0.0)
    assert d.ok
    np.testing.assert_allclose(d.target, home)
    for bad_names, values in ((names[:-1], home[:-1]), (names[:-1] + ["wrist"], home), (names, home[:-1])):
        assert f.check(bad_names, values, measured=home, observation_age_s=0.0, now=0.0).rejected == MALFORMED


def test_estop_latches_until_reset(robot):
    f = make_filter(robot)
    home = home_state(robot)
    f.engage_estop("test")
    for t in range(3):
        assert check(f, home, home, float(t)).rejected == ESTOP
    assert f.counts[ESTOP] == 3 and f.estopped
    f.reset_estop()
    assert check(f, home, home, 5.0).ok


def test_hold_targets(robot):
    f = make_filter(robot)
    home = home_state(robot)
    assert f.hold(None, "nothing known") is None
    np.testing.assert_allclose(f.hold(home, "no command yet"), home)
    moved = home + arm_offset(robot, 0.01)
    assert check(f, moved, home, 1.0).ok
    np.testing.assert_allclose(f.hold(home, "watchdog"), moved)  # the last safe target: no new motion
    np.testing.assert_allclose(f.hold(home, "e-stop", prefer_measured=True), home)  # stop where it is
    assert f.summary()["holds"] == 3


def test_every_rejection_is_logged_rate_limited(robot):
    messages: list[str] = []
    f = SafetyFilter(joint_limits(robot), SafetyConfig(), logger=messages.append)
    home = home_state(robot)
    bad = home.copy()
    bad[0] = math.nan
    for i in range(50):
        f.check(None, bad, measured=home, observation_age_s=0.0, now=i * 0.01)  # 0.5 s of rejections
    f.check(None, bad, measured=home, observation_age_s=0.0, now=1.2)
    assert f.counts[NONFINITE] == 51
    assert len(messages) == 2
    assert "non-finite" in messages[0]
    assert "50 since last report" in messages[1]


def test_config_validation():
    with pytest.raises(ValueError):
        SafetyConfig(max_step=0.0)
    with pytest.raises(ValueError):
        SafetyConfig(workspace_low=(0.0, 0.0, 1.0), workspace_high=(1.0, 1.0, 0.5))
