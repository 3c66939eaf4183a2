"""Inverse kinematics through mink (differential IK as a small QP, solved by daqp).

Why mink: it is maintained, works on any MuJoCo model, and respects joint limits as hard QP constraints instead of
clipping afterwards. Why a class: the mink ``Configuration``, tasks and limits are built once per model and reused,
which keeps one ``solve`` call well under 2 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import mink
import mujoco
import numpy as np

from ember.robots.errors import RobotError

DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])
"""wxyz: the frame rotated by pi about world x, i.e. its z axis ("approach") points straight down. For the Panda's
``ee_site`` this is the orientation of the home pose: fingers opening along world y."""


class MinkIK:
    """Solve for arm joint targets that put ``ee_site`` at a position (and orientation) in the model's world frame.

    Only ``joint_names`` move; every other degree of freedom of ``model`` (fingers, free objects) is frozen, so the
    scene model can be passed as is. A weak posture task pulls the redundant DOF toward ``posture`` (default: the
    model's ``home`` keyframe or ``qpos0``), which makes the arm configuration a function of the target and not
    of the path: demonstrations stay consistent.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        ee_site: str,
        joint_names: Sequence[str],
        *,
        posture: np.ndarray | None = None,
        position_cost: float = 1.0,
        orientation_cost: float = 0.5,
        posture_cost: float = 1e-3,
        damping: float = 1e-4,
        max_iters: int = 10,
        max_step: float = 0.05,
        max_rot_step: float = 0.3,
        pos_tol: float = 2e-4,
        rot_tol: float = 2e-3,
        solver: str = "daqp",
    ) -> None:
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, ee_site) < 0:
            raise RobotError(f"IK: model has no site '{ee_site}'.")
        self.model = model
        self.ee_site = ee_site
        self.joint_names = tuple(joint_names)
        self.qpos_adr = np.empty(len(self.joint_names), dtype=int)
        arm_dofs: list[int] = []
        for i, name in enumerate(self.joint_names):
            jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
            if jid < 0:
                raise RobotError(f"IK: model has no joint '{name}'.")
            if int(model.jnt_type[jid]) not in (
                int(mujoco.mjtJoint.mjJNT_HINGE),
                int(mujoco.mjtJoint.mjJNT_SLIDE),
            ):
                raise RobotError(f"IK: joint '{name}' must be a hinge or slide joint.")
            self.qpos_adr[i] = model.jnt_qposadr[jid]
            arm_dofs.append(int(model.jnt_dofadr[jid]))
        frozen = [d for d in range(model.nv) if d not in arm_dofs]

        key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
        self.q_rest = (model.key_qpos[key] if key >= 0 else model.qpos0).copy()
        if posture is not None:
            self.q_rest[self.qpos_adr] = np.asarray(posture, dtype=float)

        self.configuration = mink.Configuration(model, self.q_rest)
        self.frame_task = mink.FrameTask(
            ee_site, "site", position_cost=position_cost, orientation_cost=orientation_cost, lm_damping=1e-6
        )
        self.posture_task = mink.PostureTask(model, cost=posture_cost)
        self.posture_task.set_target(self.q_rest)
        self.tasks = [self.frame_task, self.posture_task]
        self.limits = [mink.ConfigurationLimit(model, gain=0.95)]
        self.constraints = [mink.DofFreezingTask(model, dof_indices=frozen)] if frozen else []
        self.damping = damping
        self.max_iters = max_iters
        self.max_step = max_step
        self.max_rot_step = max_rot_step
        self.pos_tol = pos_tol
        self.rot_tol = rot_tol
        self.solver = solver
        self.last_error = np.inf
        """Position error (m) of the last solution: check it when targets may be out of reach."""

    def full_qpos(self, q_arm: np.ndarray) -> np.ndarray:
        """A full ``qpos`` with ``q_arm`` in the arm joints and the rest posture elsewhere."""
        q = self.q_rest.copy()
        q[self.qpos_adr] = q_arm
        return q

    def forward(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position and wxyz quaternion of ``ee_site`` for arm joints ``q_arm``."""
        self.configuration.update(self.full_qpos(np.asarray(q_arm, dtype=float)))
        pose = self.configuration.get_transform_frame_to_world(self.ee_site, "site")
        return pose.translation().copy(), pose.rotation().wxyz.copy()

    def solve(
        self, q_current: np.ndarray, target_pos: np.ndarray, target_quat: np.ndarray | None = None
    ) -> np.ndarray:
        """Arm joint targets (ordered like ``joint_names``) reaching ``target_pos`` with ``target_quat`` (wxyz).

        ``target_quat=None`` means "pointing down" (:data:`DOWN_QUAT`). Starts from ``q_current`` (arm joints, or a
        full ``qpos``) and runs at most ``max_iters`` Gauss-Newton steps; joint limits hold at every step. An
        unreachable target gives the closest reachable pose (see ``last_error``).
        """
        q0 = np.asarray(q_current, dtype=float)
        if q0.shape == (self.model.nq,):
            q = q0.copy()
        elif q0.shape == (len(self.joint_names),):
            q = self.full_qpos(q0)
        else:
            raise RobotError(
                f"IK: q_current has shape {q0.shape}; expected ({len(self.joint_names)},) "
                f"or ({self.model.nq},)."
            )
        # Start inside the limits: mink's limit constraint is only feasible from there.
        lower, upper = self.limits[0].lower, self.limits[0].upper
        q = np.clip(q, lower, upper)
        quat = DOWN_QUAT if target_quat is None else np.asarray(target_quat, dtype=float)
        target = mink.SE3.from_rotation_and_translation(
            mink.SO3(quat / np.linalg.norm(quat)), np.asarray(target_pos, dtype=float)
        )
        config = self.configuration
        config.update(q)
        # Far targets are approached through waypoints (at most max_step apart): full Gauss-Newton steps toward a
        # target tens of centimetres away can overshoot into a poor configuration and stall there.
        start = config.get_transform_frame_to_world(self.ee_site, "site")
        delta = (start.inverse() @ target).log()
        n_way = int(
            np.ceil(
                max(
                    np.linalg.norm(delta[:3]) / self.max_step,
                    np.linalg.norm(delta[3:]) / self.max_rot_step,
                    1.0,
                )
            )
        )
        for k in range(1, n_way + 1):
            goal = target if k == n_way else start @ mink.SE3.exp(delta * (k / n_way))
            self.frame_task.set_target(goal)
            for _ in range(self.max_iters if k == n_way else 2):
                err = self.frame_task.compute_error(config)
                if np.linalg.norm(err[:3]) < self.pos_tol and np.linalg.norm(err[3:]) < self.rot_tol:
                    break
                vel = mink.solve_ik(
                    config,
                    self.tasks,
                    1.0,
                    self.solver,
                    damping=self.damping,
                    limits=self.limits,
                    constraints=self.constraints,
                )
                config.integrate_inplace(vel, 1.0)
        reached = config.get_transform_frame_to_world(self.ee_site, "site").translation()
        self.last_error = float(np.linalg.norm(reached - target.translation()))
        return config.q[self.qpos_adr].copy()
