"""The mock arm's ROS-free side: the MuJoCo scene, the trajectory follower and the command audit.

:class:`MockArmSim` follows ``JointTrajectory`` points with joint_trajectory_controller's semantics
(``ember.real.trajectory``) and audits every command it receives (``CommandAuditor``: limits, jumps, velocities).
Physics runs in real time (``advance``, called from the node's physics thread, catches up after a slow wake-up, so
sim time never drifts from wall time); :class:`CameraThread` renders in another thread with its own GL context and
``MjData``. The rclpy node is ``ember.real.nodes.mock_arm_node``, the parameters ``ember.real.mock_arm_params``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from ember.real.errors import RealError
from ember.real.mock_arm_params import MockArmConfig
from ember.real.robot import home_state, joint_limits, load_robot
from ember.real.trajectory import AuditConfig, CommandAuditor, TrajectoryFollower, TrajectoryPoint


class MockArmSim:
    """The physics side, ROS-free: scene, trajectory follower, auditor; stepping and rendering."""

    def __init__(self, config: MockArmConfig) -> None:
        import mujoco

        from ember.real.scene import ROBOT_PREFIX, build_scene

        self.config = cfg = config
        self.robot = load_robot(cfg.robot)
        self.limits = joint_limits(self.robot)
        self.names = self.robot.state_names
        self._mj = mujoco
        self.task = None
        if cfg.task:
            from ember.real.task_scene import TaskScene

            self.task = TaskScene(
                cfg.task,
                self.robot.name,
                cfg.split,
                tuple(cfg.cameras),
                max(cfg.image_width, cfg.image_height),
            )
            self.model, self.data = self.task.model, self.task.data
            self.physics_hz = self.task.physics_hz
            self._qadr, self._dadr = self.task.qpos_adr, self.task.qvel_adr
            q0 = self.task.reset(cfg.seed)
        else:
            spec = build_scene(self.robot.name, (cfg.image_width, cfg.image_height))
            spec.option.timestep = 1.0 / cfg.physics_hz
            self.physics_hz = cfg.physics_hz
            self.model = spec.compile()
            self.model.vis.quality.shadowsize = 0
            self.model.vis.quality.offsamples = 0
            self.data = mujoco.MjData(self.model)
            jids = [
                mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, ROBOT_PREFIX + n) for n in self.names
            ]
            self._qadr = np.array([self.model.jnt_qposadr[j] for j in jids])
            self._dadr = np.array([self.model.jnt_dofadr[j] for j in jids])
            self._act = np.array(
                [
                    mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_ACTUATOR, ROBOT_PREFIX + n)
                    for n in self.names
                ]
            )
            if np.any(self._act < 0):
                raise RealError(
                    f"robot '{self.robot.name}' needs one position actuator per joint {self.names}"
                )
            q0 = np.asarray(cfg.initial_positions, float) if cfg.initial_positions else home_state(self.robot)
            if q0.shape != (len(self.names),):
                raise RealError(
                    f"initial_positions needs {len(self.names)} values ({self.names}), got {q0.size}"
                )
            q0 = np.clip(q0, self.limits.lower, self.limits.upper)
            self.data.qpos[self._qadr] = q0
            self.data.ctrl[self._act] = q0
            mujoco.mj_forward(self.model, self.data)
        self.follower = TrajectoryFollower(self.names, q0)
        self.auditor = CommandAuditor(
            self.names,
            self.limits.lower,
            self.limits.upper,
            self.limits.velocity,
            AuditConfig(max_step=cfg.audit_max_step),
        )
        self.lock = threading.Lock()
        self.sim_start = time.monotonic()
        self.steps = 0
        self.overruns = 0
        """Times physics fell more than 100 ms behind wall time and skipped ahead."""

    def _set_controls(self, setpoint: np.ndarray) -> None:
        if self.task is not None:
            self.task.set_controls(setpoint)
        else:
            self.data.ctrl[self._act] = setpoint

    def reset_episode(self, seed: int) -> np.ndarray:
        """Task mode: start the episode of ``seed`` (layout, start pose); the arm holds its new pose."""
        if self.task is None:
            raise RealError(
                "reset_episode needs a task (the 'task' parameter); the plain scene has no episodes"
            )
        with self.lock:
            q0 = self.task.reset(seed)
            self.follower = TrajectoryFollower(self.names, q0)
            self._set_controls(q0)
        return q0

    def evaluate(self) -> dict[str, Any]:
        """Task mode: the task's success check now."""
        if self.task is None:
            return {}
        with self.lock:
            return self.task.evaluate()

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """qpos and mocap poses (goal markers move at a task reset), for rendering from another thread."""
        with self.lock:
            return self.data.qpos.copy(), self.data.mocap_pos.copy(), self.data.mocap_quat.copy()

    def camera_name(self, camera: str) -> str:
        return self.task.camera_name(camera) if self.task is not None else camera

    def advance(self, now: float) -> None:
        """Step until simulated time reaches ``now`` (monotonic), the controls following the setpoint."""
        hz = self.physics_hz
        due = int((now - self.sim_start) * hz)
        if due - self.steps > 0.1 * hz:
            self.overruns += 1
            self.steps = due - 1
        while self.steps < due:
            self.steps += 1
            setpoint = self.follower.setpoint(self.sim_start + self.steps / hz)
            with self.lock:
                self._set_controls(setpoint)
                self._mj.mj_step(self.model, self.data)

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Measured positions, velocities and actuator efforts (state order)."""
        with self.lock:
            return (
                self.data.qpos[self._qadr].copy(),
                self.data.qvel[self._dadr].copy(),
                self.data.qfrc_actuator[self._dadr].copy(),
            )

    def qpos(self) -> np.ndarray:
        with self.lock:
            return self.data.qpos.copy()

    def command(self, names: list[str], points: list[TrajectoryPoint], now: float) -> str | None:
        """Audit and (unless unsafe and refused) execute a trajectory; returns the problem, if any."""
        measured = self.state()[0]
        problem = self.auditor.audit(
            names, points, measured, self.follower.setpoint(now), self.follower.final_target()
        )
        if problem is not None and self.config.reject_unsafe:
            return f"unsafe command refused: {problem}"
        refused = self.follower.set_trajectory(names, points, now)
        return None if refused is None else f"trajectory refused: {refused}"


class CameraThread(threading.Thread):
    """Renders the cameras at a fixed rate from snapshots of the physics state (own GL context + MjData)."""

    def __init__(self, sim: MockArmSim, publish: Any, stop: threading.Event) -> None:
        super().__init__(name="mock_arm_cameras", daemon=True)
        self.sim, self.publish, self.stop = sim, publish, stop
        self.frames = 0

    def run(self) -> None:
        import mujoco

        cfg, model = self.sim.config, self.sim.model
        renderer = mujoco.Renderer(model, height=cfg.image_height, width=cfg.image_width)
        for flag in (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        ):
            renderer.scene.flags[flag] = 0
        option = mujoco.MjvOption()
        option.geomgroup[:] = 0
        option.geomgroup[:3] = 1  # scene + visual meshes; collision geoms hidden
        option.sitegroup[:] = 0  # sites hidden (as the sims render)
        data = mujoco.MjData(model)
        period = 1.0 / cfg.camera_rate_hz
        next_t = time.monotonic()
        names = {cam: self.sim.camera_name(cam) for cam in cfg.cameras}
        try:
            while not self.stop.is_set():
                data.qpos[:], data.mocap_pos[:], data.mocap_quat[:] = self.sim.snapshot()
                stamp = time.time()
                mujoco.mj_forward(model, data)
                for cam in cfg.cameras:
                    renderer.update_scene(data, camera=names[cam], scene_option=option)
                    self.publish(cam, renderer.render(), stamp)
                self.frames += 1
                next_t += period
                delay = next_t - time.monotonic()
                if delay < -period:
                    next_t = time.monotonic()
                self.stop.wait(max(0.0, delay))
        finally:
            renderer.close()
