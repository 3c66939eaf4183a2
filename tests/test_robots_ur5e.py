"""The UR5e + Robotiq 2F-85 description (unmodified Menagerie MJCF), shared gripper conventions, and PyBullet's IK."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402

from ember.robots import available_robots, get_robot, robot_mjspec  # noqa: E402
from ember.robots.ik import DOWN_QUAT, MinkIK  # noqa: E402
from ember.robots.panda import TCP_OFFSET, panda_model, panda_spec, urdf_path  # noqa: E402
from ember.robots.spec import ee_delta_action_space, joint_pos_action_space  # noqa: E402
from ember.robots.ur5e import EE_SITE, GRIPPER_JOINTS, ur5e_model, ur5e_spec, ur5e_xml_path  # noqa: E402


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return ur5e_model()


def test_spec_comes_from_the_menagerie_files():
    spec = ur5e_spec()
    assert "ur5e" in available_robots() and get_robot("UR5e").name == "ur5e"
    assert spec.description_path == str(ur5e_xml_path()) and spec.description_path.endswith("ur5e.xml")
    assert spec.joint_names[0] == "shoulder_pan_joint" and spec.dof == 6
    np.testing.assert_allclose(spec.upper, [6.28319, 6.28319, 3.1415, 6.28319, 6.28319, 6.28319])
    np.testing.assert_allclose(spec.effort_limits, [150, 150, 150, 28, 28, 28])
    assert spec.gripper_joint_names == GRIPPER_JOINTS
    np.testing.assert_allclose(spec.gripper_open, [0.0])
    np.testing.assert_allclose(spec.gripper_closed, [0.8])
    # Panda fingers close the other way: toward their lower limit.
    np.testing.assert_allclose(panda_spec().gripper_closed, [0.0, 0.0])
    assert joint_pos_action_space(spec).names == spec.state_names


def test_model_actuators_follow_state_order_and_home_points_down(model):
    spec = ur5e_spec()
    assert model.nu == len(spec.state_names) == 7
    np.testing.assert_allclose(
        model.actuator_ctrlrange[6], [0.0, 0.8]
    )  # gripper command = driver angle (rad)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_step(model, data, nstep=500)
    np.testing.assert_allclose(data.qpos[:6], spec.home_qpos, atol=2e-3)  # gravity compensated servos hold it
    ik = MinkIK(model, EE_SITE, spec.joint_names)
    pos, quat = ik.forward(spec.home_qpos)
    assert abs(float(np.dot(quat, DOWN_QUAT))) == pytest.approx(1.0, abs=1e-6)
    assert pos[0] > 0.3  # facing the tabletop workspace (+x)
    data.ctrl[6] = 0.8
    mujoco.mj_step(model, data, nstep=500)
    assert data.qpos[model.jnt_qposadr[model.joint(GRIPPER_JOINTS[0]).id]] > 0.7  # closed


def test_ik_reaches_the_tabletop_workspace(model):
    spec = ur5e_spec()
    ik = MinkIK(model, EE_SITE, spec.joint_names)
    q = spec.home_qpos.copy()
    for target in ([0.45, 0.0, 0.2], [0.3, -0.3, 0.02], [0.7, 0.3, 0.02], [0.45, 0.0, 0.4]):
        q = ik.solve(q, target)
        pos, quat = ik.forward(q)
        assert np.linalg.norm(pos - target) < 0.002 and abs(float(np.dot(quat, DOWN_QUAT))) > 0.999


def test_robot_mjspec_registry_builds_both_arms():
    assert robot_mjspec("panda").compile().nu == 9
    assert robot_mjspec("ur5e").compile().nu == 7


def test_ee_delta_with_gripper():
    space = ee_delta_action_space(0.04, gripper=True)
    assert space.names == ("ee.dx", "ee.dy", "ee.dz", "gripper")
    np.testing.assert_allclose(space.low, [-0.04, -0.04, -0.04, -1.0])


def test_pybullet_ik_matches_mujoco_kinematics():
    """One URDF, two simulators: PyBullet's IK solution, checked with MuJoCo's forward kinematics."""
    from ember.robots.pybullet_ik import PyBulletIK

    spec = panda_spec()
    pb = PyBulletIK(
        str(urdf_path()), "panda_hand", spec.joint_names, tcp_offset=(0, 0, TCP_OFFSET), rest=spec.home_qpos
    )
    mj = MinkIK(panda_model(), spec.ee_site, spec.joint_names)
    try:
        np.testing.assert_allclose(pb.forward(spec.home_qpos)[0], mj.forward(spec.home_qpos)[0], atol=1e-6)
        q = spec.home_qpos.copy()
        rng = np.random.default_rng(0)
        for _ in range(5):
            target = np.array([rng.uniform(0.3, 0.65), rng.uniform(-0.3, 0.3), rng.uniform(0.02, 0.4)])
            q = pb.solve(q, target)
            pos, quat = mj.forward(q)
            assert np.linalg.norm(pos - target) < 1e-3
            assert abs(float(np.dot(quat, DOWN_QUAT))) > 0.999
            assert np.all(q >= spec.lower - 1e-6) and np.all(q <= spec.upper + 1e-6)
        with pytest.raises(ValueError, match="shape"):
            pb.solve(np.zeros(3), [0.5, 0, 0.1])
    finally:
        pb.close()
