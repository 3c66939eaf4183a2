"""Inverse kinematics through PyBullet's own solver (``calculateInverseKinematics``, damped least squares + null space).

Why a private PyBullet client: PyBullet's IK starts from the body's *current* joint state, so solving on the
simulated robot would make the answer depend on (and disturb) the simulation. Here a kinematic copy of the robot
lives in its own DIRECT client; each solve resets it to ``q_current`` and refines, so a solve is a pure function
of its inputs, like :class:`ember.robots.ik.MinkIK`, with the same signature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ember.robots.errors import RobotError
from ember.robots.ik import DOWN_QUAT


class PyBulletIK:
    """Arm joint targets that put a point fixed in ``link`` (``tcp_offset``, link frame) at a target pose.

    ``joint_names`` are the arm joints (in order); other movable joints (fingers) are held at ``rest``'s values.
    """

    def __init__(
        self,
        urdf_path: str,
        link: str,
        joint_names: Sequence[str],
        *,
        tcp_offset: Sequence[float] = (0, 0, 0),
        rest: np.ndarray | None = None,
        max_iters: int = 8,
        pos_tol: float = 2e-4,
    ) -> None:
        import pybullet

        from ember.robots.bullet import Bullet

        self._p = Bullet()
        self._body = self._p.loadURDF(str(urdf_path), useFixedBase=True)
        p, body = self._p, self._body
        names = {p.getJointInfo(body, j)[1].decode(): j for j in range(p.getNumJoints(body))}
        links = {p.getJointInfo(body, j)[12].decode(): j for j in range(p.getNumJoints(body))}
        if link not in links:
            raise RobotError(f"PyBullet IK: URDF has no link '{link}'.")
        missing = [j for j in joint_names if j not in names]
        if missing:
            raise RobotError(f"PyBullet IK: URDF has no joint(s) {missing}.")
        self.link = links[link]
        self.joint_names = tuple(joint_names)
        self.joints = [names[j] for j in joint_names]
        # calculateInverseKinematics works on every movable DOF, in joint-index order.
        self._movable = [
            j for j in range(p.getNumJoints(body)) if p.getJointInfo(body, j)[2] != pybullet.JOINT_FIXED
        ]
        info = [p.getJointInfo(body, j) for j in self._movable]
        self._lower = [i[8] for i in info]
        self._upper = [i[9] for i in info]
        self._ranges = [max(u - lo, 1e-3) for lo, u in zip(self._lower, self._upper, strict=True)]
        self._rest = [0.5 * (lo + u) for lo, u in zip(self._lower, self._upper, strict=True)]
        if rest is not None:
            for name, value in zip(joint_names, rest, strict=True):
                self._rest[self._movable.index(names[name])] = float(value)
        self._arm_in_movable = [self._movable.index(j) for j in self.joints]
        self.tcp_offset = np.asarray(tcp_offset, dtype=float)
        self.max_iters = max_iters
        self.pos_tol = pos_tol
        self.last_error = np.inf
        """Position error (m) of the last solution."""

    def _set(self, q_arm: np.ndarray) -> None:
        for j, value in zip(self.joints, q_arm, strict=True):
            self._p.resetJointState(self._body, j, float(value))

    def forward(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position of the TCP and wxyz quaternion of ``link`` for arm joints ``q_arm``."""
        self._set(np.asarray(q_arm, dtype=float))
        return self._tcp()

    def _tcp(self) -> tuple[np.ndarray, np.ndarray]:
        pos, quat = self._p.getLinkState(self._body, self.link, computeForwardKinematics=True)[4:6]
        rot = np.array(self._p.getMatrixFromQuaternion(quat)).reshape(3, 3)
        return np.asarray(pos) + rot @ self.tcp_offset, np.array([quat[3], quat[0], quat[1], quat[2]])

    def solve(
        self, q_current: np.ndarray, target_pos: np.ndarray, target_quat: np.ndarray | None = None
    ) -> np.ndarray:
        """Arm joint targets reaching ``target_pos`` with ``target_quat`` (wxyz; None = pointing down)."""
        q0 = np.asarray(q_current, dtype=float)
        if q0.shape != (len(self.joints),):
            raise RobotError(f"PyBullet IK: q_current has shape {q0.shape}; expected ({len(self.joints)},).")
        quat = DOWN_QUAT if target_quat is None else np.asarray(target_quat, dtype=float)
        xyzw = [quat[1], quat[2], quat[3], quat[0]]
        rot = np.array(self._p.getMatrixFromQuaternion(xyzw)).reshape(3, 3)
        link_target = np.asarray(target_pos, dtype=float) - rot @ self.tcp_offset
        q = np.clip(
            q0, [self._lower[i] for i in self._arm_in_movable], [self._upper[i] for i in self._arm_in_movable]
        )
        self._set(q)
        target = np.asarray(target_pos, dtype=float)
        for it in range(self.max_iters):
            # The first pass uses the null space (limits, pull toward the rest pose) to pick the arm configuration;
            # later passes are plain damped least squares from there, which is what converges to sub-mm accuracy.
            nullspace = (
                dict(
                    lowerLimits=self._lower,
                    upperLimits=self._upper,
                    jointRanges=self._ranges,
                    restPoses=self._rest,
                )
                if it == 0
                else {}
            )
            full = self._p.calculateInverseKinematics(
                self._body,
                self.link,
                link_target.tolist(),
                xyzw,
                maxNumIterations=20,
                residualThreshold=1e-6,
                **nullspace,
            )
            q = np.clip(
                np.array([full[i] for i in self._arm_in_movable]),
                [self._lower[i] for i in self._arm_in_movable],
                [self._upper[i] for i in self._arm_in_movable],
            )
            self._set(q)
            self.last_error = float(np.linalg.norm(self._tcp()[0] - target))
            if self.last_error < self.pos_tol:
                break
        return q

    def close(self) -> None:
        self._p.close()
