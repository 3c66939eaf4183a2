"""The Panda description: names and limits from the URDF, a compiling MuJoCo model, and IK that reaches."""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402

from ember.robots import RobotError, available_robots, get_robot  # noqa: E402
from ember.robots.ik import DOWN_QUAT, MinkIK  # noqa: E402
from ember.robots.panda import EE_SITE, panda_mjspec, panda_model, panda_spec  # noqa: E402
from ember.robots.spec import (  # noqa: E402
    ACTION_SPACES,
    ActionSpaceSpec,
    ee_delta_action_space,
    ee_pos_action_space,
    joint_pos_action_space,
)


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return panda_model()


def test_spec_names_and_limits_come_from_the_urdf():
    spec = panda_spec()
    assert spec.name == "panda"
    assert spec.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert spec.gripper_joint_names == ("panda_finger_joint1", "panda_finger_joint2")
    assert spec.state_names == spec.joint_names + spec.gripper_joint_names
    assert spec.dof == 7 and spec.ee_site == EE_SITE
    assert spec.description_path.endswith("panda.urdf") and os.path.exists(spec.description_path)
    np.testing.assert_allclose(spec.lower, [-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671])
    np.testing.assert_allclose(spec.upper, [2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671])
    np.testing.assert_allclose(spec.effort_limits, [87, 87, 87, 87, 12, 12, 12])
    np.testing.assert_allclose(spec.velocity_limits, [2.175] * 4 + [2.61] * 3)
    assert np.all(spec.home_qpos > spec.lower) and np.all(spec.home_qpos < spec.upper)
    np.testing.assert_allclose(spec.gripper_upper, [0.04, 0.04])


def test_spec_is_immutable():
    spec = panda_spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        spec.lower[0] = 0.0


def test_registry_and_clear_error():
    assert "panda" in available_robots()
    assert get_robot("Panda").name == "panda"
    with pytest.raises(RobotError, match="valid robots: panda") as err:
        get_robot("ur5e_typo")
    assert isinstance(err.value, ValueError)


def test_action_spaces():
    spec = panda_spec()
    joint = joint_pos_action_space(spec)
    assert joint.name == "joint_pos" and joint.shape == (9,) and joint.names == spec.state_names
    np.testing.assert_allclose(joint.low[:7], spec.lower.astype(np.float32))
    delta = ee_delta_action_space(0.03, axes=("x", "y"))
    assert delta.names == ("ee.dx", "ee.dy") and float(delta.high[0]) == pytest.approx(0.03)
    pos = ee_pos_action_space(np.array([-1, -1, 0]), np.array([1, 1, 1]))
    box = pos.to_gym()
    assert box.shape == (3,) and box.dtype == np.float32
    assert set(ACTION_SPACES) == {"joint_pos", "ee_delta", "ee_pos"}
    with pytest.raises(RobotError, match="valid: joint_pos, ee_delta, ee_pos"):
        ActionSpaceSpec("torque", ("a",), np.zeros(1), np.ones(1))


def test_model_compiles_with_actuators_site_and_no_arm_collisions(model):
    spec = panda_spec()
    assert model.nu == 9 and model.nq == 9
    assert [model.actuator(i).name for i in range(model.nu)] == list(spec.state_names)
    np.testing.assert_allclose(model.actuator_ctrlrange[:7], np.column_stack([spec.lower, spec.upper]))
    assert model.site(EE_SITE).id >= 0
    for g in range(model.ngeom):
        body = model.body(model.geom_bodyid[g]).name
        if "finger" not in body:
            assert model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0, body
    # A scene can attach a fresh spec of the arm.
    scene = mujoco.MjSpec()
    scene.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    scene.attach(panda_mjspec(), frame=scene.worldbody.add_frame(pos=[0.1, 0, 0]), prefix="arm/")
    assert scene.compile().nu == 9


def test_position_servos_hold_home(model):
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_step(model, data, nstep=500)  # 1 s
    np.testing.assert_allclose(data.qpos[:7], panda_spec().home_qpos, atol=1e-3)


def test_home_pose_points_down(model):
    ik = MinkIK(model, EE_SITE, panda_spec().joint_names)
    _, quat = ik.forward(panda_spec().home_qpos)
    assert abs(float(np.dot(quat, DOWN_QUAT))) == pytest.approx(1.0, abs=1e-6)


def test_ik_reaches_targets_within_5mm_and_respects_limits(model):
    spec = panda_spec()
    ik = MinkIK(model, EE_SITE, spec.joint_names)
    rng = np.random.default_rng(0)
    q = spec.home_qpos.copy()
    for _ in range(20):
        target = np.array([rng.uniform(0.3, 0.65), rng.uniform(-0.3, 0.3), rng.uniform(0.02, 0.4)])
        q = ik.solve(q, target)
        pos, quat = ik.forward(q)
        assert np.linalg.norm(pos - target) < 0.005
        assert abs(float(np.dot(quat, DOWN_QUAT))) > 0.999  # still pointing down
        assert np.all(q >= spec.lower - 1e-6) and np.all(q <= spec.upper + 1e-6)


def test_ik_small_moves_are_fast(model):
    spec = panda_spec()
    ik = MinkIK(model, EE_SITE, spec.joint_names)
    q = ik.solve(spec.home_qpos, [0.5, 0.0, 0.05])
    times = []
    for k in range(50):
        target = np.array([0.5 + 0.1 * np.sin(k / 8), 0.1 * np.cos(k / 8), 0.05])
        t0 = time.perf_counter()
        q = ik.solve(q, target)
        times.append(time.perf_counter() - t0)
        assert ik.last_error < 0.001
    assert np.median(times) < 0.004  # ~0.5 ms here; generous for a loaded CI machine


def test_ik_rejects_bad_inputs(model):
    with pytest.raises(RobotError, match="no site"):
        MinkIK(model, "nope", panda_spec().joint_names)
    ik = MinkIK(model, EE_SITE, panda_spec().joint_names)
    with pytest.raises(RobotError, match="shape"):
        ik.solve(np.zeros(3), [0.5, 0, 0.1])
