"""The end-effector controller a real arm runs (robots/ee_control.py) moves the joints as the sim's ee_delta step
does: same commanded position, same IK, same gripper mapping."""

from __future__ import annotations

import numpy as np
import pytest

from ember.robots import get_robot
from ember.robots.ee_control import WORKSPACE_HIGH, WORKSPACE_LOW, EndEffectorController
from ember.robots.errors import RobotError
from ember.sims import make_env
from ember.sims.tabletop.scene import WORKSPACE_HIGH as SIM_HIGH
from ember.sims.tabletop.scene import WORKSPACE_LOW as SIM_LOW


def test_workspace_is_the_sims_box():
    assert np.allclose(WORKSPACE_LOW, SIM_LOW) and np.allclose(WORKSPACE_HIGH, SIM_HIGH)


def test_ee_delta_joint_targets_match_the_sim_step():
    env = make_env("PickPlace", backend="mujoco", render_mode=None)
    sim = env.unwrapped
    obs, _ = env.reset(seed=3)
    ctrl = EndEffectorController(get_robot("panda"), "ee_delta")
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(25):
        action = np.r_[rng.uniform(-0.03, 0.03, 3), rng.choice([-1.0, 1.0])].astype(np.float32)
        target = ctrl(action, obs["observation.state"])
        obs, *_ = env.step(action)
        worst = max(worst, float(np.abs(target[: sim.robot.dof] - sim._q_cmd).max()))
        assert np.allclose(target[sim.robot.dof :], sim._grip_cmd)
        assert np.allclose(
            ctrl.commanded_ee, sim._cmd, atol=1e-4
        )  # start: FK of the measured arm vs START_EE
    env.close()
    assert worst < 1e-3, (
        worst
    )  # rad: the same IK from the same start (the controller starts from measured joints)


def test_ee_pos_and_bad_actions():
    robot = get_robot("panda")
    ctrl = EndEffectorController(robot, "ee_pos")
    q = np.r_[robot.home_qpos, robot.gripper_home]
    target = ctrl([0.5, 0.1, 0.2, -1.0], q)
    assert np.allclose(ctrl.commanded_ee, [0.5, 0.1, 0.2])
    assert (
        np.linalg.norm(ctrl.ik.forward(target[: robot.dof])[0] - [0.5, 0.1, 0.2]) < 0.05
    )  # one IK iteration
    ctrl([5.0, 0.0, 0.2, 0.0], q)
    assert ctrl.commanded_ee[0] == pytest.approx(WORKSPACE_HIGH[0])  # clipped to the box, never beyond
    with pytest.raises(RobotError, match="4 values"):
        ctrl([0.1, 0.2], q)
    with pytest.raises(RobotError, match="non-finite"):
        ctrl([np.nan, 0.0, 0.2, 0.0], q)
    with pytest.raises(RobotError, match="not 'joint_pos'"):
        EndEffectorController(robot, "joint_pos")
