"""End-effector actions -> joint targets: the controller behind ``ee_delta`` and ``ee_pos`` action spaces.

Why here (robots/, not sims/ or real/): a policy trained on ``ee_delta`` actions in a sim must move a real arm the
same way, so the simulator's end-effector controller and the policy node's are one piece of code. It does what the
tabletop env's step does: keep a *commanded* end-effector position (``ee_delta`` adds the action's displacement
to it, ``ee_pos`` replaces it), clip it to the workspace box, solve IK (:class:`ember.robots.ik.MinkIK`, hand pointing
down) starting from the previous joint command, and map the gripper command in [-1 open, +1 closed] onto the
finger joints. Positions are in the robot base frame (the sims put the base at the world origin).

The commanded position starts at the measured end effector (forward kinematics of the measured joints) after
:meth:`EndEffectorController.reset`, so a policy started on an arm at any pose continues from where it is, and
an arm outside the workspace box is brought into it by the actions, never by a jump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ember.robots.errors import RobotError
from ember.robots.spec import EE_DELTA, EE_POS, RobotSpec

WORKSPACE_LOW = (0.25, -0.30, 0.0)
WORKSPACE_HIGH = (0.70, 0.30, 0.35)
"""The tabletop tasks' end-effector box (m, base frame; z = 0 is the table surface the base stands on)."""


@dataclass(frozen=True)
class EndEffectorControlConfig:
    workspace_low: tuple[float, float, float] = WORKSPACE_LOW
    workspace_high: tuple[float, float, float] = WORKSPACE_HIGH
    ik_iterations: int = 1
    """Gauss-Newton iterations per command. One, as in the sims: each solve starts from the previous command, so
    a held target converges within a step or two (0.2 ms a solve)."""

    def __post_init__(self) -> None:
        if len(self.workspace_low) != 3 or len(self.workspace_high) != 3:
            raise RobotError("workspace_low/high must be (x, y, z) in metres")
        if any(lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
            raise RobotError(
                f"workspace_low {self.workspace_low} must be below workspace_high {self.workspace_high}"
            )
        if self.ik_iterations < 1:
            raise RobotError("ik_iterations must be >= 1")


class EndEffectorController:
    """Turns ``ee_delta`` (``[dx, dy, dz, gripper]``) or ``ee_pos`` (``[x, y, z, gripper]``) actions into joint
    targets (``robot.state_names`` order: arm joints, then fingers)."""

    def __init__(
        self, robot: RobotSpec, action_space: str, config: EndEffectorControlConfig | None = None, model=None
    ) -> None:  # model: mujoco.MjModel of the robot alone (default: robots' own)
        from ember.robots import robot_mjspec
        from ember.robots.ik import MinkIK

        if action_space not in (EE_DELTA, EE_POS):
            raise RobotError(
                f"an end-effector controller runs ee_delta or ee_pos actions, not {action_space!r}"
            )
        self.robot = robot
        self.action_space = action_space
        self.config = config or EndEffectorControlConfig()
        self.low = np.asarray(self.config.workspace_low, dtype=float)
        self.high = np.asarray(self.config.workspace_high, dtype=float)
        self.ik = MinkIK(
            model if model is not None else robot_mjspec(robot.name).compile(),
            robot.ee_site,
            robot.joint_names,
            max_iters=self.config.ik_iterations,
        )
        self._grip_open = np.asarray(robot.gripper_open, dtype=float)
        self._grip_span = np.asarray(robot.gripper_closed, dtype=float) - self._grip_open
        self.commanded_ee: np.ndarray | None = None
        self._q_cmd: np.ndarray | None = None

    @property
    def action_dim(self) -> int:
        return 4 if len(self._grip_open) else 3

    def reset(self) -> None:
        """Forget the commanded pose: the next action starts from the measured one."""
        self.commanded_ee = None
        self._q_cmd = None

    def gripper_target(self, command: float) -> np.ndarray:
        t = (min(1.0, max(-1.0, float(command))) + 1.0) / 2.0
        return self._grip_open + t * self._grip_span

    def __call__(self, action: Sequence[float], measured: np.ndarray) -> np.ndarray:
        """Joint targets for one action, given the measured state vector (``state_names`` order)."""
        a = np.asarray(action, dtype=float).reshape(-1)
        if a.shape != (self.action_dim,):
            raise RobotError(
                f"{self.action_space} action must have {self.action_dim} values "
                f"([x, y, z{', gripper' if self.action_dim == 4 else ''}]), got {a.shape[0]}"
            )
        if not np.all(np.isfinite(a)):
            raise RobotError(f"non-finite {self.action_space} action {a.tolist()}")
        measured = np.asarray(measured, dtype=float)
        dof = self.robot.dof
        if self._q_cmd is None:
            self._q_cmd = measured[:dof].copy()
            self.commanded_ee = self.ik.forward(self._q_cmd)[0]
        base = self.commanded_ee if self.action_space == EE_DELTA else np.zeros(3)
        # An arm that starts outside the box (a real arm at its home pose) is not yanked into it: the box is
        # widened to hold the current command, so each action moves the hand at most its own displacement, and
        # once inside it stays inside. Started inside (as every sim episode is) this is the sims' plain clip.
        low, high = np.minimum(self.low, self.commanded_ee), np.maximum(self.high, self.commanded_ee)
        self.commanded_ee = np.clip(base + a[:3], low, high)
        q_arm = self.ik.solve(self._q_cmd, self.commanded_ee)
        self._q_cmd = q_arm
        fingers = self.gripper_target(a[3]) if self.action_dim == 4 else np.zeros(0)
        return np.concatenate([q_arm, fingers])
