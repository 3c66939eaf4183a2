"""The Gymnasium environment of every tabletop task, on any backend: ``TabletopEnv("PickPlace", backend="mujoco")``.

Why one env class: the observation/action contract (docs/design.md, "Observation and action") and the input
validation must be identical across tasks and simulators, so they live here once; a task
(``ember.sims.tabletop.tasks``) says what the scene holds and what success is, a world (``ember.sims.mujoco.world``,
``ember.sims.pybullet.world``) simulates it.

Control at ``control_hz`` (10 Hz). Actions:

* ``ee_delta`` (default): ``[dx, dy, dz, gripper]``: an end-effector displacement (m, at most ``max_ee_delta`` per
  axis) added to the commanded position, which stays in the workspace box; the hand keeps pointing down; IK (mink on
  MuJoCo, PyBullet's own on PyBullet) turns it into joint targets. ``gripper`` in [-1, 1]: -1 open, +1 closed.
* ``joint_pos``: absolute arm + gripper joint targets (``robot.state_names`` order), bounded by the joint limits.

NaN/inf or a wrong shape raises :class:`~sims.errors.SimError`; finite out-of-limit actions are clipped to the
action space (documented, never a silent physics explosion).
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ember.robots.spec import EE_DELTA, JOINT_POS, ee_delta_action_space, joint_pos_action_space
from ember.sims.action_check import checked_action
from ember.sims.cameras import MAX_DEPTH
from ember.sims.errors import SimError
from ember.sims.pointcloud import fixed_size, rgbd_to_points
from ember.sims.randomization import Randomization, resolve_randomization
from ember.sims.splits import salted_seed, split_spec
from ember.sims.tabletop.instructions import templates_for
from ember.sims.tabletop.scene import CAMERA_NAMES, RENDER_CAMERA, START_EE, WORKSPACE_HIGH, WORKSPACE_LOW
from ember.sims.tabletop.task import Episode, Task
from ember.sims.tabletop.tasks import TABLETOP_TASKS
from ember.sims.tabletop.world import World

OBS_MODES = ("state", "pixels")
ACTION_SPACE_TYPES = (EE_DELTA, JOINT_POS)
TABLETOP_BACKENDS = ("mujoco", "pybullet", "isaacgym")
TEXT_CHARSET = frozenset(string.ascii_letters + string.digits + " -,.'")
POINT_CLOUD_LOW = np.array([0.1, -0.5, 0.003])
POINT_CLOUD_HIGH = np.array([0.95, 0.5, 0.6])
"""Point clouds keep what lies above the table top (the table itself is cropped) within reach of the robot."""
START_IK_SOLVES = 20
BACKEND_ROBOTS = {"mujoco": ("panda", "ur5e"), "pybullet": ("panda",), "isaacgym": ("panda",)}


@dataclass(frozen=True)
class TabletopEnvConfig:
    """Options every tabletop task accepts (task options are listed by each task's config dataclass)."""

    robot: str = "panda"
    obs_mode: str = "state"
    """'state', or 'pixels' to add ``observation.images.<cam>`` for each of ``cameras``."""
    cameras: tuple[str, ...] = ("front",)
    image_size: int = 96
    depth: bool = False
    """Add ``observation.depth.<cam>`` (float32 metres, HxWx1) for each camera (needs obs_mode='pixels')."""
    point_cloud: int = 0
    """Add ``observation.point_cloud`` with this many [x, y, z, r, g, b] rows fused from the cameras (open3d)."""
    action_space_type: str = EE_DELTA
    max_episode_steps: int = 0
    """0 = the task's default."""
    control_hz: float = 10.0
    split: str = "train"
    heldout_scene_factors: tuple[str, ...] | None = None
    """With ``split='heldout_scene'``: apply only these of its changes (``ember.sims.splits.SCENE_FACTORS``:
    ``table_texture``, ``lighting``, ``distractors``), the others as in ``train``; None = all of them."""
    randomization: Any = "default"
    """'none' | 'default' | 'full', a dict of :class:`~sims.randomization.Randomization` fields, or one."""
    render_mode: str | None = "rgb_array"
    render_size: int = 256
    max_ee_delta: float = 0.04
    instructions: str = "train"
    """Phrasing set ``reset`` draws the instruction from: ``train`` (the task's templates) or ``heldout``
    (:data:`ember.sims.tabletop.instructions.HELDOUT_TEMPLATES`, never recorded: evaluate on them, never tune)."""
    instruction_templates: tuple[str, ...] = ()
    """A user's own templates with the task's slots (``{obj}``, ``{target}``, ...) instead of either set."""
    switch_after: int = 0
    """SwitchVLA: after this many steps the goal switches (``Task.retarget``): the ``task`` observation gives the
    new instruction from then on and success is scored against the new goal; 0 = never."""
    switch_goal: str = ""
    """What switches (PickPlace: ``object``, the default, or ``target``)."""

    def validate(self, backend: str) -> None:
        if self.robot not in BACKEND_ROBOTS[backend]:
            raise SimError(
                f"robot '{self.robot}' is not available on backend '{backend}'; valid: "
                f"{', '.join(BACKEND_ROBOTS[backend])}."
            )
        if self.obs_mode not in OBS_MODES:
            raise SimError(f"unknown obs_mode '{self.obs_mode}'; valid: {', '.join(OBS_MODES)}.")
        if backend == "isaacgym" and self.obs_mode != "state":
            raise SimError("the Isaac Gym adapter has no cameras yet; use obs_mode='state'.")
        if isinstance(self.cameras, str):
            raise SimError(f"cameras must be a tuple of names, e.g. ('{self.cameras}',), not a string.")
        unknown = [c for c in self.cameras if c not in CAMERA_NAMES]
        if unknown:
            raise SimError(f"unknown camera(s) {unknown}; valid: {', '.join(CAMERA_NAMES)}.")
        if self.obs_mode == "pixels" and not 1 <= len(self.cameras) <= 3:
            raise SimError("obs_mode='pixels' needs one to three cameras.")
        if len(set(self.cameras)) != len(self.cameras):
            raise SimError(f"duplicate camera names in {tuple(self.cameras)}.")
        if (self.depth or self.point_cloud) and self.obs_mode != "pixels":
            raise SimError("depth and point_cloud need obs_mode='pixels' (they come from the cameras).")
        if not 0 <= int(self.point_cloud) <= 65536:
            raise SimError(f"point_cloud must be a number of points in [0, 65536], got {self.point_cloud}.")
        if not 8 <= int(self.image_size) <= 1024 or not 8 <= int(self.render_size) <= 2048:
            raise SimError("image_size must be in [8, 1024] and render_size in [8, 2048] pixels.")
        if self.action_space_type not in ACTION_SPACE_TYPES:
            raise SimError(
                f"unknown action_space_type '{self.action_space_type}'; valid: "
                f"{', '.join(ACTION_SPACE_TYPES)}."
            )
        if int(self.max_episode_steps) < 0:
            raise SimError(
                f"max_episode_steps must be >= 1 (or 0 for the task's default), got {self.max_episode_steps}."
            )
        if not 1.0 <= float(self.control_hz) <= 100.0:
            raise SimError(f"control_hz must be in [1, 100], got {self.control_hz}.")
        if self.render_mode not in (None, "rgb_array"):
            raise SimError(f"unknown render_mode '{self.render_mode}'; valid: 'rgb_array' or None.")
        if not 0.0 < float(self.max_ee_delta) <= 0.1:
            raise SimError(f"max_ee_delta must be in (0, 0.1] m, got {self.max_ee_delta}.")
        split_spec(self.split, self.heldout_scene_factors)  # raises SimError on a bad split or factor
        if (
            isinstance(self.switch_after, bool)
            or not isinstance(self.switch_after, int)
            or self.switch_after < 0
        ):
            raise SimError(
                f"switch_after must be a number of steps >= 0 (0 = never), got {self.switch_after!r}."
            )


def split_kwargs(task_cls: type[Task], kwargs: dict[str, Any]) -> tuple[TabletopEnvConfig, Any]:
    """The env config and the task config from one flat kwargs dict; unknown names are an error listing both."""
    env_fields = {f.name for f in dataclasses.fields(TabletopEnvConfig)}
    task_fields = {f.name for f in dataclasses.fields(task_cls.config_cls)}
    unknown = sorted(set(kwargs) - env_fields - task_fields)
    if unknown:
        raise SimError(
            f"{task_cls.name}: unknown option(s) {unknown}; env options: {', '.join(sorted(env_fields))}; "
            f"task options: {', '.join(sorted(task_fields)) or 'none'}."
        )
    env_kw = {k: v for k, v in kwargs.items() if k in env_fields}
    if "cameras" in env_kw and not isinstance(env_kw["cameras"], str):
        env_kw["cameras"] = tuple(env_kw["cameras"])
    if isinstance(env_kw.get("heldout_scene_factors"), list):  # from JSON (``ember eval --env_kwargs``)
        env_kw["heldout_scene_factors"] = tuple(env_kw["heldout_scene_factors"])
    if isinstance(env_kw.get("instruction_templates"), list):
        env_kw["instruction_templates"] = tuple(env_kw["instruction_templates"])
    task_kw = {k: v for k, v in kwargs.items() if k in task_fields}
    return TabletopEnvConfig(**env_kw), task_cls.config_cls(**task_kw)


def make_world(backend: str, robot: str, task: Task, cfg: TabletopEnvConfig) -> World:
    size = max(640, cfg.image_size, cfg.render_size)
    if backend == "mujoco":
        from ember.sims.mujoco.world import MujocoWorld

        return MujocoWorld(robot, task.scene(), cfg.control_hz, offscreen_size=size)
    if backend == "pybullet":
        from ember.sims.pybullet.world import PyBulletWorld

        return PyBulletWorld(robot, task.scene(), cfg.control_hz)
    if backend == "isaacgym":
        from ember.sims.isaacgym.world import (
            IsaacGymWorld,  # raises SimError with install steps without Isaac Gym
        )

        return IsaacGymWorld(robot, task.scene(), cfg.control_hz)
    raise SimError(f"unknown backend '{backend}' for tabletop tasks; valid: {', '.join(TABLETOP_BACKENDS)}.")


class TabletopEnv(gym.Env):
    """A language-conditioned tabletop task; see the module docstring for actions.

    Observation (``gymnasium.spaces.Dict``, LeRobot keys):
      * ``observation.state``: float32, arm joint positions (rad) + gripper joint positions;
      * ``observation.environment_state``: float32, ``[ee_x, ee_y, ee_z, gripper_closure]`` + the task's privileged
        features (object positions, goal one-hots/values; names in ``feature_names``);
      * ``observation.images.<cam>``: uint8 HxWx3, with ``obs_mode="pixels"``;
      * ``observation.depth.<cam>``: float32 HxWx1 metres, with ``depth=True``;
      * ``observation.point_cloud``: float32 (N, 6) ``[x, y, z, r, g, b]`` (world frame), with ``point_cloud=N``;
      * ``task``: the instruction, drawn from the task's paraphrase templates.

    ``info``: ``is_success``, ``progress`` (the task's ground-truth progress in [0, 1], 1.0 exactly at success; each
    task's docstring defines its stages), ``goal_error`` (task units), ``task``, ``split``, ``ee_pos`` and, with cameras,
    ``cameras`` = ``{cam: {"intrinsics": 3x3, "extrinsics": 4x4 world->camera}}`` (OpenCV axes).
    Reward 1 on success else 0; ``terminated`` on success; ``truncated`` after ``max_episode_steps``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, task: str, backend: str = "mujoco", **kwargs: Any) -> None:
        if task not in TABLETOP_TASKS:
            raise SimError(f"unknown tabletop task '{task}'; valid: {', '.join(TABLETOP_TASKS)}.")
        if backend not in TABLETOP_BACKENDS:
            raise SimError(f"unknown backend '{backend}'; valid: {', '.join(TABLETOP_BACKENDS)}.")
        task_cls = TABLETOP_TASKS[task]
        cfg, task_cfg = split_kwargs(task_cls, kwargs)
        cfg.validate(backend)
        self.cfg = cfg
        self.backend = backend
        self.split = cfg.split
        self.randomization: Randomization = resolve_randomization(cfg.randomization)
        self.task = task_cls(task_cfg, split_spec(cfg.split, cfg.heldout_scene_factors), self.randomization)
        self.task.templates = templates_for(
            task, task_cls.templates, cfg.instructions, cfg.instruction_templates
        )
        if cfg.switch_after and not task_cls.switch_goals:
            able = [name for name, cls in TABLETOP_TASKS.items() if cls.switch_goals]
            raise SimError(
                f"{task} cannot switch its goal mid-episode (switch_after); tasks that can: {able}."
            )
        if cfg.switch_goal and cfg.switch_goal not in task_cls.switch_goals:
            raise SimError(
                f"{task}: switch_goal must be one of {list(task_cls.switch_goals)}, got {cfg.switch_goal!r}."
            )
        self.max_episode_steps = int(cfg.max_episode_steps) or task_cls.max_episode_steps
        self.control_hz = float(cfg.control_hz)
        self.render_mode = cfg.render_mode
        self.action_space_type = cfg.action_space_type
        self.cameras = tuple(cfg.cameras) if cfg.obs_mode == "pixels" else ()
        self.metadata = {**type(self).metadata, "render_fps": self.control_hz}

        self.world: World = make_world(backend, cfg.robot, self.task, cfg)
        self.robot = self.world.robot
        self._grip_open = self.robot.gripper_open
        self._grip_span = self.robot.gripper_closed - self.robot.gripper_open
        self.workspace_low, self.workspace_high = WORKSPACE_LOW.copy(), WORKSPACE_HIGH.copy()
        self._q_start = self.robot.home_qpos.copy()
        for _ in range(
            START_IK_SOLVES
        ):  # worlds iterate IK little per call (one per control step); converge here
            self._q_start = self.world.ik(self._q_start, START_EE)
        self.action_spec = (
            ee_delta_action_space(cfg.max_ee_delta, gripper=True)
            if cfg.action_space_type == EE_DELTA
            else joint_pos_action_space(self.robot)
        )
        self.action_space = self.action_spec.to_gym()
        self.feature_names: dict[str, list[str]] = {
            "observation.state": list(self.robot.state_names),
            "observation.environment_state": [
                "ee.x",
                "ee.y",
                "ee.z",
                "gripper_closure",
                *self.task.feature_names(),
            ],
            "action": list(self.action_spec.names),
        }
        self.observation_space = self._make_observation_space()
        self._episode: Episode | None = None
        self._cmd = START_EE.copy()
        self._q_cmd = self._q_start.copy()
        self._grip_cmd = self.robot.gripper_open.copy()
        self._steps = 0

    @property
    def robot_name(self) -> str:
        return self.robot.name

    @property
    def commanded_ee_pos(self) -> np.ndarray:
        """The end-effector position the controller currently commands (world frame)."""
        return self._cmd.copy()

    @property
    def episode(self) -> Episode:
        """The current episode (layout, instruction, goal): privileged, for experts and tests."""
        if self._episode is None:
            raise SimError("call reset() before reading the episode.")
        return self._episode

    # ------------------------------------------------------------------ spaces
    def _make_observation_space(self) -> spaces.Dict:
        r = self.robot
        margin = 0.1  # servo overshoot can pass a joint limit slightly; never clip what we observe
        low = np.concatenate([r.lower - margin, r.gripper_lower - 0.02]).astype(np.float32)
        high = np.concatenate([r.upper + margin, r.gripper_upper + 0.02]).astype(np.float32)
        n_env = len(self.feature_names["observation.environment_state"])
        obs: dict[str, spaces.Space] = {
            "observation.state": spaces.Box(low, high, dtype=np.float32),
            # Objects can fall to the floor (z = -0.75) but never leave this box.
            "observation.environment_state": spaces.Box(-10.0, 10.0, (n_env,), np.float32),
        }
        s = int(self.cfg.image_size)
        for cam in self.cameras:
            obs[f"observation.images.{cam}"] = spaces.Box(0, 255, (s, s, 3), np.uint8)
            if self.cfg.depth:
                obs[f"observation.depth.{cam}"] = spaces.Box(0.0, MAX_DEPTH, (s, s, 1), np.float32)
        if self.cfg.point_cloud:
            obs["observation.point_cloud"] = spaces.Box(
                -10.0, 10.0, (int(self.cfg.point_cloud), 6), np.float32
            )
        obs["task"] = spaces.Text(max_length=128, min_length=1, charset=TEXT_CHARSET)
        return spaces.Dict(obs)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=salted_seed(seed, self.split))
        self._episode = self.task.sample(self.np_random)
        self.world.reset(self._episode.layout, self._q_start)
        self._cmd = START_EE.copy()
        self._q_cmd = self._q_start.copy()
        self._grip_cmd = self.robot.gripper_open.copy()
        self._steps = 0
        return self._observation(), self._info(self.task.evaluate(self.world, self._episode))

    def _check_action(self, action: Any) -> np.ndarray:
        return checked_action(
            self.task.name, action, self.action_space, self.action_space_type, self.action_spec.names
        )

    def gripper_target(self, command: float) -> np.ndarray:
        """Gripper joint targets for a command in [-1 (open), 1 (closed)]."""
        t = (min(1.0, max(-1.0, float(command))) + 1.0) / 2.0
        return self._grip_open + t * self._grip_span

    def joint_action(self, ee_target: np.ndarray, gripper: float) -> np.ndarray:
        """The ``joint_pos`` action that moves the end effector to ``ee_target`` (experts in joint_pos envs)."""
        target = np.clip(ee_target, self.workspace_low, self.workspace_high)
        q = self.world.ik(self._q_cmd, target)
        return np.concatenate([q, self.gripper_target(gripper)]).astype(np.float32)

    def step(self, action: Any):
        if self._episode is None:
            raise SimError(f"{self.task.name}: call reset() before step().")
        a = self._check_action(action)
        if self.action_space_type == EE_DELTA:
            self._cmd = np.clip(self._cmd + a[:3], self.workspace_low, self.workspace_high)
            q_arm = self.world.ik(self._q_cmd, self._cmd)
            self._grip_cmd = self.gripper_target(a[3])
        else:
            q_arm = a[: self.robot.dof]
            self._grip_cmd = a[self.robot.dof :]
        self._q_cmd = q_arm
        self.world.step(q_arm, self._grip_cmd)
        if self.action_space_type == JOINT_POS:
            self._cmd = np.clip(self.world.ee_pos(), self.workspace_low, self.workspace_high)
        self._steps += 1
        if self.cfg.switch_after and self._steps == self.cfg.switch_after:
            self._episode = self.task.retarget(self._episode, self.np_random, self.cfg.switch_goal)
        metrics = self.task.evaluate(self.world, self._episode)
        terminated = bool(metrics["is_success"])
        truncated = self._steps >= self.max_episode_steps and not terminated
        return self._observation(), float(terminated), terminated, truncated, self._info(metrics)

    # ------------------------------------------------------------------ observations
    def _gripper_closure(self, q_grip: np.ndarray) -> float:
        return float(np.clip(np.mean((q_grip - self._grip_open) / self._grip_span), 0.0, 1.0))

    def _observation(self) -> dict[str, Any]:
        assert self._episode is not None
        q = self.world.joint_positions()
        env_state = np.concatenate(
            [
                self.world.ee_pos(),
                [self._gripper_closure(q[self.robot.dof :])],
                self.task.features(self.world, self._episode),
            ]
        )
        obs: dict[str, Any] = {
            "observation.state": q.astype(np.float32),
            "observation.environment_state": env_state.astype(np.float32),
        }
        s = int(self.cfg.image_size)
        clouds: list[tuple[np.ndarray, np.ndarray]] = []
        for cam in self.cameras:
            rgb = self.world.render(cam, s)
            obs[f"observation.images.{cam}"] = rgb
            if self.cfg.depth or self.cfg.point_cloud:
                depth = self.world.render_depth(cam, s)
                if self.cfg.depth:
                    obs[f"observation.depth.{cam}"] = depth[..., None]
                if self.cfg.point_cloud:
                    info = self.world.camera_info(cam, s)
                    clouds.append(rgbd_to_points(rgb, depth, info["intrinsics"], info["extrinsics"]))
        if self.cfg.point_cloud:
            points = np.concatenate([c[0] for c in clouds])
            colors = np.concatenate([c[1] for c in clouds])
            obs["observation.point_cloud"] = fixed_size(
                points, colors, int(self.cfg.point_cloud), POINT_CLOUD_LOW, POINT_CLOUD_HIGH, self.np_random
            )
        obs["task"] = self._episode.instruction
        return obs

    def _info(self, metrics: dict[str, Any]) -> dict[str, Any]:
        assert self._episode is not None
        info = {
            **metrics,
            "task": self._episode.instruction,
            "split": self.split,
            "ee_pos": self.world.ee_pos(),
        }
        if self.cfg.switch_after:
            info["switched"] = self._steps >= self.cfg.switch_after
        if self.cameras:
            s = int(self.cfg.image_size)
            info["cameras"] = {cam: self.world.camera_info(cam, s) for cam in self.cameras}
        return info

    def render(self) -> np.ndarray | None:
        """An RGB frame (render_size x render_size) from a camera that sees the robot and the whole scene."""
        if self.render_mode is None:
            return None
        return self.world.render(RENDER_CAMERA.name, int(self.cfg.render_size))

    def close(self) -> None:
        self.world.close()
