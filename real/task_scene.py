"""A sims task's scene behind the mock arm: the same MuJoCo model, robot, objects and cameras as ``ember eval``.

Why: a policy trained in sim should meet, over ROS 2, exactly the world it was trained and evaluated in, so its
success through the bridge can be compared seed by seed with the in-process evaluation. The mock arm is a
simulator, so this module is the one place ``real/`` imports ``sims/`` (docs/design.md, "Layers"): it builds the task's
:class:`ember.sims.tabletop.env.TabletopEnv` (``joint_pos`` actions, the requested cameras) and hands its world's model
and data to :class:`ember.real.mock_arm_logic.MockArmSim`, which steps them in real time under the trajectory follower, as it
steps its own plain scene otherwise. One scene definition, not two.

Episodes: :meth:`TaskScene.reset` applies the task's layout for a seed (objects, goal markers, camera poses,
lighting of the split) and puts the arm at the task's start pose; :meth:`TaskScene.evaluate` is the task's own
success check (``is_success``, ``goal_error`` and, where the task has one, ``progress``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ember.real.errors import RealError


class TaskScene:
    """One sims tabletop task (MuJoCo backend) as a real-time scene."""

    def __init__(
        self,
        task: str,
        robot: str = "panda",
        split: str = "train",
        cameras: tuple[str, ...] = ("front",),
        image_size: int = 96,
        max_episode_steps: int = 0,
    ) -> None:
        from ember.sims.errors import SimError
        from ember.sims.tabletop.env import TabletopEnv

        try:
            self.env = TabletopEnv(
                task,
                backend="mujoco",
                robot=robot,
                split=split,
                action_space_type="joint_pos",
                obs_mode="pixels" if cameras else "state",
                cameras=tuple(cameras) or ("front",),
                image_size=image_size,
                render_mode=None,
                max_episode_steps=max_episode_steps,
            )
        except SimError as exc:
            raise RealError(f"mock arm task: {exc}") from exc
        self.task = task
        self.split = split
        self.world = self.env.world
        self.model = self.world.model
        self.data = self.world.data
        addresses = self.world.servo_addresses()
        self.qpos_adr = addresses["qpos"]
        self.qvel_adr = addresses["qvel"]
        self.arm_actuators = addresses["arm_actuators"]
        self.gripper_actuators = addresses["gripper_actuators"]
        self.cameras = tuple(cameras)
        self.seed: int | None = None
        self.episode_index = -1

    @property
    def physics_hz(self) -> float:
        return 1.0 / float(self.model.opt.timestep)

    @property
    def instruction(self) -> str:
        return self.env.episode.instruction if self.seed is not None else ""

    def set_controls(self, setpoint: np.ndarray) -> None:
        """Servo targets from a state-ordered setpoint (arm joints, then fingers; one gripper actuator takes the
        first finger's target, as the sim's own step does)."""
        dof = len(self.arm_actuators)
        self.data.ctrl[self.arm_actuators] = setpoint[:dof]
        self.data.ctrl[self.gripper_actuators] = setpoint[dof : dof + len(self.gripper_actuators)]

    def reset(self, seed: int) -> np.ndarray:
        """Start the episode of ``seed`` (the same layout ``ember eval`` gives that seed); returns the arm's state."""
        self.env.reset(seed=int(seed))
        self.seed = int(seed)
        self.episode_index += 1
        return self.world.joint_positions()

    def evaluate(self) -> dict[str, Any]:
        """The task's success check on the current physics state (call with the physics lock held)."""
        if self.seed is None:
            return {"is_success": False}
        metrics = self.env.task.evaluate(self.world, self.env.episode)
        return {
            k: (bool(v) if isinstance(v, bool | np.bool_) else float(v))
            for k, v in metrics.items()
            if isinstance(v, bool | int | float | np.bool_ | np.floating)
        }

    def camera_name(self, camera: str) -> str:
        """The MuJoCo camera a task camera name renders from."""
        return self.model.camera(self.world.camera_id(camera)).name

    def camera_fovy(self, camera: str) -> float:
        return float(self.model.cam_fovy[self.world.camera_id(camera)])

    def close(self) -> None:
        self.env.close()
