"""Where RT-H motions get the end effector from: recorded ``ee.*`` columns, or forward kinematics of the joints.

:func:`ee_source` picks the source (``MotionConfig.source``): ``ee.x/ee.y/ee.z`` entries of
``observation.environment_state`` or ``observation.state`` (ember's privileged sim datasets record them), else
forward kinematics of ``observation.state`` through the robot's MuJoCo model (:class:`JointFK`,
``ember.robots.robot_mjspec``): what a real arm's joints-only dataset needs. :func:`episode_ee` reads one
episode's positions (metres, robot base frame) and gripper closure (0 open .. 1 closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ember.data import columns
from ember.data.errors import DatasetError
from ember.vla.motions import MotionConfig

EE_NAMES = ("ee.x", "ee.y", "ee.z")
GRIPPER_NAME = "gripper_closure"


def feature_names(ft: Mapping[str, Any]) -> list[str]:
    """The entry names of a feature (LeRobot's list, or its ``{"motors": [...]}`` form); [] when unnamed."""
    names = ft.get("names")
    if isinstance(names, Mapping):  # LeRobot's {"motors": [...]} form
        names = next(iter(names.values()), None)
    return [str(n) for n in names] if isinstance(names, list) else []


def ee_source(features: Mapping[str, Any], config: MotionConfig) -> tuple[str, str]:
    """``(kind, key)``: ``("columns", feature)`` when a feature records ``ee.x/ee.y/ee.z``, else ``("fk",
    "observation.state")``; an error saying what is missing when neither is possible."""
    if config.source in ("auto", "columns"):
        for key in ("observation.environment_state", "observation.state"):
            if key in features and all(n in feature_names(features[key]) for n in EE_NAMES):
                return "columns", key
        if config.source == "columns":
            raise DatasetError(
                "no feature records the end effector (ee.x, ee.y, ee.z in observation.environment_state "
                "or observation.state); use source='fk' to compute it from the joints."
            )
    if "observation.state" not in features:
        raise DatasetError(
            "the dataset has no observation.state, so neither recorded nor FK end-effector positions."
        )
    return "fk", "observation.state"


class JointFK:
    """Forward kinematics of a registered robot: joint state rows -> ``ee_site`` positions and gripper closure.

    Uses the same MuJoCo model the sims build the arm from (base at the origin, the tabletop's base frame), so the
    directions match the recorded ee.* columns of sim datasets.
    """

    def __init__(self, robot_type: str, state_names: Sequence[str]) -> None:
        import mujoco

        from ember.robots import get_robot, robot_mjspec

        if not robot_type:
            raise DatasetError(
                "a joints-only dataset needs info.json 'robot_type' (e.g. 'panda') for forward "
                "kinematics of the end effector."
            )
        self.robot = get_robot(robot_type)
        self.model = robot_mjspec(robot_type).compile()
        self.data = mujoco.MjData(self.model)
        names = list(state_names) or list(self.robot.state_names)
        missing = [j for j in self.robot.joint_names if j not in names]
        if missing:
            raise DatasetError(
                f"observation.state names {names} lack the {robot_type} joints {missing}; FK needs "
                f"every arm joint ({list(self.robot.joint_names)})."
            )
        self.arm_cols = [names.index(j) for j in self.robot.joint_names]
        grip = [j for j in self.robot.gripper_joint_names if j in names]
        self.grip_cols = [names.index(j) for j in grip]
        self.grip_sel = [list(self.robot.gripper_joint_names).index(j) for j in grip]
        self.qpos_adr = [
            int(self.model.jnt_qposadr[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, j)])
            for j in self.robot.joint_names
        ]
        self.site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, self.robot.ee_site)
        self._mujoco = mujoco

    def __call__(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        state = np.asarray(state, dtype=np.float64)
        out = np.empty((len(state), 3))
        for t, row in enumerate(state):
            self.data.qpos[self.qpos_adr] = row[self.arm_cols]
            self._mujoco.mj_kinematics(self.model, self.data)
            out[t] = self.data.site_xpos[self.site]
        grip = None
        if self.grip_cols:
            sel = self.grip_sel
            open_, closed = self.robot.gripper_open[sel], self.robot.gripper_closed[sel]
            span = np.where(np.abs(closed - open_) > 1e-9, closed - open_, 1.0)
            grip = np.clip(np.mean((state[:, self.grip_cols] - open_) / span, axis=1), 0.0, 1.0)
        return out, grip


def episode_ee(
    table: pa.Table, features: Mapping[str, Any], kind: str, key: str, fk: JointFK | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(ee positions (T, 3), gripper closure (T,) or None)`` of one episode's rows."""
    arr = np.asarray(columns.to_numpy(table.column(key), features[key]), dtype=np.float64).reshape(
        table.num_rows, -1
    )
    if kind == "columns":
        names = feature_names(features[key])
        ee = arr[:, [names.index(n) for n in EE_NAMES]]
        if GRIPPER_NAME in names:
            return ee, arr[:, names.index(GRIPPER_NAME)]
        if fk is not None and fk.grip_cols and "observation.state" in features:
            state = np.asarray(
                columns.to_numpy(table.column("observation.state"), features["observation.state"])
            )
            return ee, fk(state.reshape(table.num_rows, -1))[1]
        return ee, None
    assert fk is not None
    return fk(arr)
