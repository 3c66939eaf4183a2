"""PushT on any backend: a Panda pushes a T-shaped block onto a painted target T on a table.

The robot's hand points down and its pusher (a short cylinder at the closed fingertips) slides at a fixed height
just above the table, so the task is planar like the 2-D PushT benchmark, with real arm dynamics underneath.

Control (``control_hz``, default 10 Hz): an action sets a planar pusher target in the table frame (see
:mod:`ember.sims.mujoco.pusht_scene`). Out-of-bounds actions are clipped to the action space, the target is clipped
to the workspace, and the commanded pusher position moves toward it by at most ``max_ee_step`` metres per control
step (0.05 m = 0.5 m/s at 10 Hz), which keeps the arm well inside its speed limits. Each control step runs IK
once for the new command and hands the joint targets to the backend's servos.

:class:`PushTTask` holds everything but the physics (spaces, validation, sampling, control, observations, splits,
the coverage metric); a backend (:mod:`ember.sims.mujoco.pusht`, :mod:`ember.sims.pybullet.pusht`) fills in the hooks, so both
backends are the same task by construction.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ember.robots.panda import panda_spec
from ember.robots.spec import EE_DELTA, EE_POS, ee_delta_action_space, ee_pos_action_space
from ember.sims.action_check import checked_action
from ember.sims.errors import SimError
from ember.sims.mujoco.pusht_scene import (
    CAMERA_NAMES,
    PUSH_HEIGHT,
    PUSHER_RADIUS,
    RENDER_CAMERA,
    TABLE_ORIGIN,
    table_to_world,
)
from ember.sims.splits import COLORS, TRAIN_PALETTE, check_split, salted_seed, split_spec
from ember.sims.tshape import Pose2D, TShape

OBS_MODES = ("state", "pixels")
ACTION_SPACE_TYPES = (EE_POS, EE_DELTA)

INSTRUCTIONS: tuple[str, ...] = (
    "push the T-shaped block onto the target",
    "push the T-shaped block onto the green T",
    "slide the T block so that it covers the green target",
    "move the T-shaped block to the target pose",
    "align the grey T with the green T on the table",
)
"""Paraphrases of the task; ``reset`` draws one from the seeded RNG."""
_TEXT_CHARSET = frozenset(string.ascii_letters + string.digits + " -,.'")

ENV_STATE_NAMES = ("pusher_x", "pusher_y", "block_x", "block_y", "block_sin_yaw", "block_cos_yaw")
TABLE_EXTENT = 1.0  # m: every point of the table top is within this box around the table frame's origin


def table_pose(pos: Sequence[float], quat_wxyz: Sequence[float]) -> np.ndarray:
    """(x, y, yaw) in the table frame of a body at world position ``pos`` turned by ``quat_wxyz`` about z."""
    w, x, y, z = quat_wxyz
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return np.array([pos[0] - TABLE_ORIGIN[0], pos[1] - TABLE_ORIGIN[1], yaw])


class PushTTask(gym.Env):
    """Push the T onto the target. Observations follow LeRobot's keys; see the module docstring for control.

    Observation (``gymnasium.spaces.Dict``):
      * ``observation.state``: float32 (9,), 7 arm joint positions (rad) + 2 finger positions (m);
      * ``observation.environment_state``: float32 (6,), ``[pusher_x, pusher_y, block_x, block_y, sin(yaw),
        cos(yaw)]`` in the table frame (metres);
      * ``observation.images.<cam>``: uint8 (image_size, image_size, 3), only with ``obs_mode="pixels"``;
      * ``task``: the instruction string.

    Action (float32): ``ee_pos`` = absolute pusher target ``[x, y]`` in the table frame; ``ee_delta`` = ``[dx, dy]``
    added to the current command, each bounded by ``ee_delta_limit``. NaN/inf or a wrong shape raises
    :class:`~sims.errors.SimError`; finite out-of-bounds actions are clipped.

    Reward ``min(1, coverage / success_coverage)``; ``terminated`` on success (coverage >= ``success_coverage``);
    ``truncated`` after ``max_episode_steps`` steps (handled here, not by a TimeLimit wrapper).

    ``split`` (``ember.sims.splits``): ``train`` as always; ``heldout_goal`` moves and turns the target T
    (:attr:`HELDOUT_GOAL_YAW`), ``heldout_object`` gives the block an unseen colour, ``heldout_scene`` an unseen table
    texture, light and visual distractors outside the workspace; ``heldout_scene_factors`` (a subset of
    ``ember.sims.splits.SCENE_FACTORS``) applies only some of those three, the others as in ``train``.

    ``reset(seed=s)`` fully determines the block's initial pose and the instruction (the ``split`` salts ``s``);
    ``reset(options={"block_pose": (x, y, yaw)})`` places the block explicitly (tests, scripted setups).
    ``info``: ``coverage``, ``is_success``, ``progress`` (``min(1, coverage / success_coverage)``: the task's
    ground-truth progress, 1.0 exactly at success), ``block_pose``, ``goal_pose`` (x, y, yaw), ``pusher_pos``, ``task``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    robot_name = "panda"

    GOAL_POSE: Pose2D = (0.0, -0.04, 0.0)
    """Target pose of the T (x, y, yaw) in the table frame."""
    BLOCK_INIT_CENTER: Pose2D = (0.0, 0.08, 0.0)
    """Nominal initial block pose: 12 cm from the target toward +y (the robot's left), same yaw. Episodes draw
    ``+-block_init_xy_range`` in x and y and ``+-block_init_yaw_range`` in yaw around it (uniformly)."""
    PUSHER_START = np.array([0.0, -0.24])
    WORKSPACE_LOW = np.array([-0.23, -0.32])
    WORKSPACE_HIGH = np.array([0.23, 0.32])
    """Reachable box of pusher targets (table frame), checked against the Panda's IK with the hand pointing down."""
    HELDOUT_GOAL_XY = 0.04
    HELDOUT_GOAL_YAW = (math.pi / 8, math.pi / 4)
    """``heldout_goal``: the target T is moved up to 4 cm from :attr:`GOAL_POSE` and turned by 22.5-45 degrees
    either way; ``train`` only ever shows :attr:`GOAL_POSE`."""

    def __init__(
        self,
        obs_mode: str = "state",
        cameras: tuple[str, ...] = ("front",),
        image_size: int = 96,
        action_space_type: str = EE_POS,
        max_episode_steps: int = 200,
        control_hz: float = 10.0,
        success_coverage: float = 0.95,
        render_mode: str | None = "rgb_array",
        render_size: int = 256,
        split: str = "train",
        block_init_xy_range: float = 0.08,
        block_init_yaw_range: float = math.pi / 4,
        max_ee_step: float = 0.05,
        ee_delta_limit: float = 0.03,
        heldout_scene_factors: tuple[str, ...] | None = None,
    ) -> None:
        self._validate(
            obs_mode,
            cameras,
            image_size,
            action_space_type,
            max_episode_steps,
            control_hz,
            success_coverage,
            render_mode,
            render_size,
            split,
            block_init_xy_range,
            block_init_yaw_range,
            max_ee_step,
            ee_delta_limit,
        )
        self.obs_mode = obs_mode
        self.cameras = tuple(cameras) if obs_mode == "pixels" else ()
        self.image_size = int(image_size)
        self.action_space_type = action_space_type
        self.max_episode_steps = int(max_episode_steps)
        self.control_hz = float(control_hz)
        self.success_coverage = float(success_coverage)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        self.split = split
        self.block_init_xy_range = float(block_init_xy_range)
        self.block_init_yaw_range = float(block_init_yaw_range)
        self.max_ee_step = float(max_ee_step)
        self.ee_delta_limit = float(ee_delta_limit)
        self.metadata = {**type(self).metadata, "render_fps": self.control_hz}

        self.robot = panda_spec()
        self.tshape = TShape()
        self.pusher_radius = PUSHER_RADIUS
        self.goal_pose: Pose2D = tuple(float(v) for v in self.GOAL_POSE)  # type: ignore[assignment]

        self._split = split_spec(split, heldout_scene_factors, "PushT")
        self._build_physics()
        self._q_start = self.ik.solve(self.robot.home_qpos, self._pusher_world(self.PUSHER_START))
        self._grip_closed = self.robot.gripper_lower.copy()

        self.action_spec = (
            ee_pos_action_space(self.WORKSPACE_LOW, self.WORKSPACE_HIGH, axes=("x", "y"))
            if action_space_type == EE_POS
            else ee_delta_action_space(self.ee_delta_limit, ("x", "y"))
        )
        self.action_space = self.action_spec.to_gym()
        self.observation_space = self._make_observation_space()
        self.feature_names: dict[str, list[str]] = {
            "observation.state": list(self.robot.state_names),
            "observation.environment_state": list(ENV_STATE_NAMES),
            "action": list(self.action_spec.names),
        }

        self._instruction = INSTRUCTIONS[0]
        self._restart(self.BLOCK_INIT_CENTER)

    # ------------------------------------------------------------------ backend hooks
    # A backend (sims.mujoco.pusht, sims.pybullet.pusht) fills these in; everything else is shared.
    def _build_physics(self) -> None:
        """Build the scene; set ``ik`` (``solve(q, world_pos)``) and ``n_substeps``."""
        raise NotImplementedError

    def _reset_physics(self, block: Pose2D) -> None:
        """Arm at ``_q_start`` with the gripper closed, the target T at ``goal_pose``, the block at ``block``."""
        raise NotImplementedError

    def _set_block_rgba(self, rgba: tuple[float, ...]) -> None:
        raise NotImplementedError

    def _joint_positions(self) -> np.ndarray:
        """Arm then gripper joint positions."""
        raise NotImplementedError

    def _drive(self, q_prev: np.ndarray, q_new: np.ndarray) -> None:
        """One control period of the servos, from joint targets ``q_prev`` to ``q_new``."""
        raise NotImplementedError

    def _render_camera(self, camera: str, size: int) -> np.ndarray:
        raise NotImplementedError

    def block_pose(self) -> np.ndarray:
        """(x, y, yaw) of the block in the table frame."""
        raise NotImplementedError

    def pusher_pos(self) -> np.ndarray:
        """Measured (x, y) of the pusher centre in the table frame."""
        raise NotImplementedError

    def set_block_pose(self, pose: Pose2D) -> None:
        """Place the block (table frame), at rest; for tests and scripted setups."""
        raise NotImplementedError

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _validate(
        obs_mode: str,
        cameras: tuple[str, ...],
        image_size: int,
        action_space_type: str,
        max_episode_steps: int,
        control_hz: float,
        success_coverage: float,
        render_mode: str | None,
        render_size: int,
        split: str,
        xy_range: float,
        yaw_range: float,
        max_ee_step: float,
        ee_delta_limit: float,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise SimError(f"PushT: unknown obs_mode '{obs_mode}'; valid: {', '.join(OBS_MODES)}.")
        if isinstance(cameras, str):
            raise SimError(f"PushT: cameras must be a tuple of names, e.g. ('{cameras}',), not a string.")
        unknown = [c for c in cameras if c not in CAMERA_NAMES]
        if unknown:
            raise SimError(f"PushT: unknown camera(s) {unknown}; valid: {', '.join(CAMERA_NAMES)}.")
        if obs_mode == "pixels" and not cameras:
            raise SimError("PushT: obs_mode='pixels' needs at least one camera.")
        if obs_mode == "pixels" and len(set(cameras)) != len(cameras):
            raise SimError(f"PushT: duplicate camera names in {tuple(cameras)}.")
        if not 8 <= int(image_size) <= 1024 or not 8 <= int(render_size) <= 2048:
            raise SimError("PushT: image_size must be in [8, 1024] and render_size in [8, 2048] pixels.")
        if action_space_type not in ACTION_SPACE_TYPES:
            raise SimError(
                f"PushT: unknown action_space_type '{action_space_type}'; valid: "
                f"{', '.join(ACTION_SPACE_TYPES)} (joint_pos control is not offered for this task)."
            )
        if int(max_episode_steps) < 1:
            raise SimError(f"PushT: max_episode_steps must be >= 1, got {max_episode_steps}.")
        if not 1.0 <= float(control_hz) <= 100.0:
            raise SimError(f"PushT: control_hz must be in [1, 100], got {control_hz}.")
        if not 0.0 < float(success_coverage) <= 1.0:
            raise SimError(f"PushT: success_coverage must be in (0, 1], got {success_coverage}.")
        if render_mode not in (None, "rgb_array"):
            raise SimError(f"PushT: unknown render_mode '{render_mode}'; valid: 'rgb_array' or None.")
        check_split(split, "PushT")
        if not 0.0 <= float(xy_range) <= 0.15 or not 0.0 <= float(yaw_range) <= math.pi:
            raise SimError(
                "PushT: block_init_xy_range must be in [0, 0.15] m and block_init_yaw_range in [0, pi]."
            )
        if not 0.0 < float(max_ee_step) <= 0.1 or not 0.0 < float(ee_delta_limit) <= 0.1:
            raise SimError("PushT: max_ee_step and ee_delta_limit must be in (0, 0.1] m.")

    def _make_observation_space(self) -> spaces.Dict:
        margin = 0.1  # servo overshoot can pass a joint limit slightly; never clip what we observe
        low = np.concatenate([self.robot.lower - margin, self.robot.gripper_lower - 0.01]).astype(np.float32)
        high = np.concatenate([self.robot.upper + margin, self.robot.gripper_upper + 0.01]).astype(np.float32)
        # Positions are bounded by the table (the block cannot leave it: the pusher's workspace stops well short).
        env_low = np.array([-TABLE_EXTENT] * 4 + [-1.0, -1.0], dtype=np.float32)
        env_high = np.array([TABLE_EXTENT] * 4 + [1.0, 1.0], dtype=np.float32)
        obs: dict[str, spaces.Space] = {
            "observation.state": spaces.Box(low, high, dtype=np.float32),
            "observation.environment_state": spaces.Box(env_low, env_high, dtype=np.float32),
        }
        for cam in self.cameras:
            obs[f"observation.images.{cam}"] = spaces.Box(
                0, 255, (self.image_size, self.image_size, 3), np.uint8
            )
        obs["task"] = spaces.Text(max_length=128, min_length=1, charset=_TEXT_CHARSET)
        return spaces.Dict(obs)

    @staticmethod
    def _pusher_world(xy: np.ndarray) -> np.ndarray:
        return table_to_world(xy, PUSH_HEIGHT)

    # ------------------------------------------------------------------ privileged state (experts, tests)
    @property
    def commanded_pos(self) -> np.ndarray:
        """The pusher position the controller currently commands (table frame)."""
        return self._cmd.copy()

    def coverage(self) -> float:
        return self.tshape.coverage(tuple(self.block_pose()), self.goal_pose)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=salted_seed(seed, self.split))
        rng = self.np_random
        block = self._sample_block_pose(rng)
        self._instruction = INSTRUCTIONS[int(rng.integers(len(INSTRUCTIONS)))]
        # What the held-out splits change is drawn after everything train draws, so train episodes stay as they were.
        if self._split.heldout_goals:
            yaw = rng.uniform(*self.HELDOUT_GOAL_YAW) * rng.choice([-1.0, 1.0])
            dx, dy = rng.uniform(-self.HELDOUT_GOAL_XY, self.HELDOUT_GOAL_XY, 2)
            self.goal_pose = (
                float(self.GOAL_POSE[0] + dx),
                float(self.GOAL_POSE[1] + dy),
                float(self.GOAL_POSE[2] + yaw),
            )
        if self._split.palette != TRAIN_PALETTE:  # heldout_object: a block of an unseen colour
            color = self._split.palette[int(rng.integers(len(self._split.palette)))]
            self._set_block_rgba(COLORS[color])
            self._instruction = self._instruction.replace("grey", color)
        if options and "block_pose" in options:
            block = tuple(float(v) for v in options["block_pose"])
        self._restart(block)
        return self._observation(), self._info()

    def _sample_block_pose(self, rng: np.random.Generator) -> Pose2D:
        cx, cy, cyaw = self.BLOCK_INIT_CENTER
        r, yr = self.block_init_xy_range, self.block_init_yaw_range
        for _ in range(100):  # keep the pusher's start clear of the block (only matters for wide ranges)
            pose = (cx + rng.uniform(-r, r), cy + rng.uniform(-r, r), cyaw + rng.uniform(-yr, yr))
            if not self.tshape.contains(pose, self.PUSHER_START[None], margin=self.pusher_radius + 0.01)[0]:
                return pose
        raise SimError("PushT: could not place the block clear of the pusher; reduce block_init_xy_range.")

    def _restart(self, block: Pose2D) -> None:
        """A new episode from the block pose ``block``: physics reset, the command back at the start."""
        self._reset_physics(block)
        self._cmd = self.PUSHER_START.copy()
        self._q_cmd = self._q_start.copy()
        self._steps = 0

    def _check_action(self, action: Any) -> np.ndarray:
        return checked_action(
            "PushT", action, self.action_space, self.action_space_type, self.action_spec.names
        )

    def step(self, action: Any):
        a = self._check_action(action)
        target = self._cmd + a if self.action_space_type == EE_DELTA else a
        target = np.clip(target, self.WORKSPACE_LOW, self.WORKSPACE_HIGH)
        move = target - self._cmd
        dist = float(np.linalg.norm(move))
        if dist > self.max_ee_step:
            move *= self.max_ee_step / dist
        self._cmd = self._cmd + move

        q_prev = self._q_cmd
        q_new = self.ik.solve(q_prev, self._pusher_world(self._cmd))
        self._drive(q_prev, q_new)
        self._q_cmd = q_new
        self._steps += 1

        info = self._info()
        reward = float(min(1.0, info["coverage"] / self.success_coverage))
        terminated = bool(info["is_success"])
        truncated = self._steps >= self.max_episode_steps and not terminated
        return self._observation(), reward, terminated, truncated, info

    def _observation(self) -> dict[str, Any]:
        state = self._joint_positions().astype(np.float32)
        bx, by, yaw = self.block_pose()
        px, py = self.pusher_pos()
        obs: dict[str, Any] = {
            "observation.state": state,
            "observation.environment_state": np.array(
                [px, py, bx, by, math.sin(yaw), math.cos(yaw)], dtype=np.float32
            ),
        }
        for cam in self.cameras:
            obs[f"observation.images.{cam}"] = self._render_camera(cam, self.image_size)
        obs["task"] = self._instruction
        return obs

    def _info(self) -> dict[str, Any]:
        coverage = self.coverage()
        return {
            "coverage": coverage,
            "is_success": coverage >= self.success_coverage,
            "progress": float(min(1.0, coverage / self.success_coverage)),
            "block_pose": self.block_pose(),
            "goal_pose": np.array(self.goal_pose),
            "pusher_pos": self.pusher_pos(),
            "task": self._instruction,
        }

    def render(self) -> np.ndarray | None:
        """An RGB frame (render_size x render_size) from a camera that sees the robot, block and target."""
        if self.render_mode is None:
            return None
        return self._render_camera(RENDER_CAMERA, self.render_size)
