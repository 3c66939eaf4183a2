"""The Panda in PyBullet: loaded from the robots/ URDF, servoed like the MuJoCo one.

Shared by the tabletop world and PushT so both drive the arm the same way: position servos with the URDF's effort
limits whose targets are interpolated across the physics substeps of a control period, and only the links that
must touch things (fingers, or a tool) colliding, as in MuJoCo.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from ember.robots.panda import HAND_BODY, panda_spec

ARM_KP = 0.3
"""PyBullet position-servo gain (its motors are velocity constraints; 0.3 tracks a 10 Hz command without overshoot)."""
FINGER_FORCE = 20.0
"""N per finger: the URDF's finger effort limit."""
SUBSTEPS_PER_CTRL_UPDATE = 4


class BulletPanda:
    """One Panda body in a PyBullet client, with only ``colliding_links`` (link names) in contact."""

    def __init__(
        self, p: Any, urdf: str, colliding_links: Collection[str], finger_friction: float = 1.0
    ) -> None:
        self.p = p
        self.spec = panda_spec()
        self.body = p.loadURDF(urdf, basePosition=[0, 0, 0], useFixedBase=True)
        n = p.getNumJoints(self.body)
        joints = {p.getJointInfo(self.body, j)[1].decode(): j for j in range(n)}
        self.links = {p.getJointInfo(self.body, j)[12].decode(): j for j in range(n)}
        self.arm = [joints[j] for j in self.spec.joint_names]
        self.grip = [joints[j] for j in self.spec.gripper_joint_names]
        self.hand = self.links[HAND_BODY]
        self.touch_links = {self.links[name] for name in colliding_links}
        for link in range(-1, n):
            if link in self.touch_links:
                p.changeDynamics(self.body, link, lateralFriction=finger_friction, spinningFriction=0.001)
            else:
                p.setCollisionFilterGroupMask(self.body, link, 0, 0)
        self._force = list(self.spec.effort_limits)
        self._q_cmd = self.spec.home_qpos.copy()

    def reset(self, q_arm: np.ndarray, q_grip: np.ndarray) -> None:
        """Put the arm at rest at ``q_arm`` with the servos holding it."""
        for j, q in zip(self.arm, q_arm, strict=True):
            self.p.resetJointState(self.body, j, float(q), 0.0)
        for j, q in zip(self.grip, q_grip, strict=True):
            self.p.resetJointState(self.body, j, float(q), 0.0)
        self._q_cmd = np.array(q_arm, dtype=float)
        self._command(self._q_cmd, q_grip)

    def _command(self, q_arm: np.ndarray, q_grip: np.ndarray) -> None:
        p = self.p
        p.setJointMotorControlArray(
            self.body,
            self.arm,
            p.POSITION_CONTROL,
            targetPositions=list(q_arm),
            forces=self._force,
            positionGains=[ARM_KP] * len(self.arm),
        )
        p.setJointMotorControlArray(
            self.body,
            self.grip,
            p.POSITION_CONTROL,
            targetPositions=list(q_grip),
            forces=[FINGER_FORCE] * len(self.grip),
        )

    def drive(self, q_arm: np.ndarray, q_grip: np.ndarray, n_substeps: int) -> None:
        """Step the physics ``n_substeps`` times, moving the arm targets linearly to ``q_arm``."""
        q_prev, q_new = self._q_cmd, np.asarray(q_arm, dtype=float)
        chunks = max(1, n_substeps // SUBSTEPS_PER_CTRL_UPDATE)
        for i in range(chunks):
            n = n_substeps // chunks + (1 if i < n_substeps % chunks else 0)
            self._command(q_prev + (q_new - q_prev) * ((i + 1) / chunks), q_grip)
            for _ in range(n):
                self.p.stepSimulation()
        self._q_cmd = q_new

    def joint_positions(self) -> np.ndarray:
        """Arm then gripper joint positions (``state_names`` order)."""
        return np.array([s[0] for s in self.p.getJointStates(self.body, self.arm + self.grip)])

    def link_pose(self, link: int) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation matrix of a link frame."""
        pos, quat = self.p.getLinkState(self.body, link, computeForwardKinematics=True)[4:6]
        return np.asarray(pos), np.array(self.p.getMatrixFromQuaternion(quat)).reshape(3, 3)
