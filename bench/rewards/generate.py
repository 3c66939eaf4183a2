"""Labelled rollouts for the reward benchmark, generated with the simulators directly (a stand-in for
``ember collect --behavior=mixed`` until that option exists; ``run.py --data=collect`` uses it once it does).

Each episode is one behaviour, cycling ``expert``, ``noisy``, ``failing``:
- ``expert``: the scripted expert (sims/experts), kept running ``linger`` steps after the first success, so success
  frames are states, not a single terminal frame;
- ``noisy``: the expert with Gaussian noise on its end-effector steps (std drawn per episode in [0.1, 0.5] x the
  step limit) and, with probability 0.02 per step, a gripper command flipped;
- ``failing``: one of a wrong goal (the expert is shown another object, pad or height), an early stop (the expert
  freezes after a random fraction of its usual length) or a drop (the gripper opens during the carry / hold).

Columns besides the robot's observations (joints, cameras) and LeRobot's ``next.*``:
``sim.success`` (bool, the success check of the state *shown* in that frame), ``sim.progress`` (float32 in [0, 1],
defined below from the simulator's state) and ``sim.behavior`` (string). The reward models never read them as
inputs; they are training targets and the benchmark's ground truth.

``sim.progress`` (a shaped task measure, here because the sims have none yet):
- PickPlace: 0.2 * reach + 0.2 * max(lifted, carried) + 0.5 * carried + 0.1 * success, where reach = 1 - |ee - cube| /
  |ee - cube| at the start (clipped), lifted = cube height above rest / 5 cm (clipped), carried = 1 - |cube - pad|_xy
  / its start value (clipped);
- Lift: 0.3 * reach + 0.6 * (1 - |h - goal| / goal, clipped, 0 while the cube rests) + 0.1 * success.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BEHAVIORS = ("expert", "noisy", "failing")
MAX_STEPS = {"PickPlace": 70, "Lift": 60}
LINGER = 6


@dataclass
class _Goalview:
    """What a misled expert reads as ``env.episode``: the real episode with another goal."""

    layout: Any
    instruction: str
    goal: dict


class _Misled:
    """Forwards everything to the unwrapped env except ``episode``, whose goal is replaced (wrong-goal failures)."""

    def __init__(self, env: Any, goal: dict) -> None:
        self._env = env
        self._episode = _Goalview(env.episode.layout, env.episode.instruction, goal)

    @property
    def unwrapped(self) -> _Misled:
        return self

    @property
    def episode(self) -> _Goalview:
        return self._episode

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)


def _wrong_goal(task: str, u: Any, rng: np.random.Generator) -> dict:
    goal = dict(u.episode.goal)
    n = u.task.cfg.num_objects
    if task == "PickPlace":
        if rng.random() < 0.5:
            goal["object_index"] = int((goal["object_index"] + rng.integers(1, n)) % n)
            goal["object"] = f"object_{goal['object_index']}"
        else:
            goal["target_index"] = int((goal["target_index"] + rng.integers(1, n)) % n)
            goal["target"] = f"pad_{goal['target_index']}"
    else:
        if rng.random() < 0.5 and n > 1:
            goal["object_index"] = int((goal["object_index"] + rng.integers(1, n)) % n)
            goal["object"] = f"object_{goal['object_index']}"
        else:
            off = float(rng.choice([-1, 1]) * rng.uniform(0.04, 0.07))
            goal["height"] = float(np.clip(goal["height"] + off, 0.02, 0.24))
            if abs(goal["height"] - u.episode.goal["height"]) < 0.03:
                goal["height"] = u.episode.goal["height"] + 0.05
    return goal


class _Progress:
    """``sim.progress`` of the module docstring, from the unwrapped env's world and episode."""

    def __init__(self, task: str, u: Any) -> None:
        self.task = task
        g = u.episode.goal
        self.obj = g["object"]
        self.half = u.task.objects[g["object_index"]].half_height
        cube = u.world.object_pose(self.obj)[0]
        self.reach0 = max(1e-3, float(np.linalg.norm(u.world.ee_pos() - cube)))
        if task == "PickPlace":
            self.pad = np.asarray(u.episode.layout.markers[g["target"]].pos[:2])
            self.carry0 = max(1e-3, float(np.linalg.norm(cube[:2] - self.pad)))
        else:
            self.goal_h = float(g["height"])

    def __call__(self, u: Any, success: bool) -> float:
        cube = u.world.object_pose(self.obj)[0]
        reach = 1.0 - min(1.0, float(np.linalg.norm(u.world.ee_pos() - cube)) / self.reach0)
        if self.task == "PickPlace":
            lifted = float(np.clip((cube[2] - self.half) / 0.05, 0.0, 1.0))
            carried = 1.0 - min(1.0, float(np.linalg.norm(cube[:2] - self.pad)) / self.carry0)
            p = 0.2 * reach + 0.2 * max(lifted, carried) + 0.5 * carried + 0.1 * success
        else:
            h = float(cube[2] - self.half)
            height = 0.0 if h < 0.005 else float(np.clip(1.0 - abs(h - self.goal_h) / self.goal_h, 0.0, 1.0))
            p = 0.3 * reach + 0.6 * height + 0.1 * success
        return float(np.clip(p, 0.0, 1.0))


def features(env: Any) -> dict[str, dict]:
    feats: dict[str, dict] = {}
    for key, space in env.observation_space.spaces.items():
        if key.startswith("observation.images."):
            feats[key] = {"dtype": "video", "shape": list(space.shape), "names": ["height", "width", "channels"]}
    feats["observation.state"] = {"dtype": "float32", "shape": list(env.observation_space["observation.state"].shape),
                                  "names": None}
    feats["action"] = {"dtype": "float32", "shape": list(env.action_space.shape), "names": None}
    feats["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    feats["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    feats["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    feats["sim.success"] = {"dtype": "bool", "shape": [1], "names": None}
    feats["sim.progress"] = {"dtype": "float32", "shape": [1], "names": None}
    feats["sim.behavior"] = {"dtype": "string", "shape": [1], "names": None}
    return feats


def generate(root: str | Path, tasks: tuple[str, ...] = ("PickPlace", "Lift"), episodes_per_task: int = 60,
             seed: int = 0, cameras: tuple[str, ...] = ("front", "wrist"), image_size: int = 64,
             quiet: bool = False) -> dict[str, Any]:
    """Writes one dataset holding ``episodes_per_task`` episodes of each task (behaviours cycling); returns counts."""
    from tqdm.auto import tqdm

    from ember.data import DatasetWriter
    from sims import make_env
    from sims.experts import make_expert
    from sims.tabletop.world import GRIPPER

    envs = {t: make_env(t, backend="mujoco", obs_mode="pixels", cameras=tuple(cameras), image_size=image_size,
                        max_episode_steps=MAX_STEPS[t]) for t in tasks}
    first = envs[tasks[0]]
    writer = DatasetWriter.create(root, fps=int(first.unwrapped.control_hz), features=features(first),
                                  robot_type=first.unwrapped.robot_name)
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=episodes_per_task * len(tasks), desc="rollouts", disable=quiet, dynamic_ncols=True)
    try:
        for i in range(episodes_per_task):
            for t_index, task in enumerate(tasks):
                env = envs[task]
                u = env.unwrapped
                behavior = BEHAVIORS[i % len(BEHAVIORS)]
                obs, info = env.reset(seed=seed * 100_000 + 1000 * t_index + i)
                expert = make_expert(task, env)
                progress = _Progress(task, u)
                driver: Any = env
                mode, noise, stop_at, drop_at = "", 0.0, 10**9, 10**9
                if behavior == "noisy":
                    noise = float(rng.uniform(0.1, 0.5)) * float(u.cfg.max_ee_delta)
                elif behavior == "failing":
                    mode = str(rng.choice(["wrong_goal", "early_stop", "drop"]))
                    if mode == "wrong_goal":
                        driver = _Misled(u, _wrong_goal(task, u, rng))
                    elif mode == "early_stop":
                        stop_at = int(rng.integers(3, 16 if task == "PickPlace" else 11))
                    else:
                        drop_at = int(rng.integers(10, 22 if task == "PickPlace" else 16))
                success = bool(info.get("is_success", False))
                since_success = -1
                grip = -1.0
                for step in range(MAX_STEPS[task] + LINGER):
                    p = progress(u, success)
                    if step >= stop_at:
                        action = np.array([0.0, 0.0, 0.0, grip], dtype=np.float32)
                    else:
                        action = np.asarray(expert.act(driver), dtype=np.float32)
                        grip = float(action[3])
                    if noise:
                        action[:3] += rng.normal(0.0, noise, 3).astype(np.float32)
                        if rng.random() < 0.02:
                            action[3] = -action[3]
                    if step >= drop_at and u.world.touching(progress.obj, GRIPPER):
                        action[3] = -1.0
                        drop_at = step  # stays open from here on
                    action = np.clip(action, env.action_space.low, env.action_space.high).astype(np.float32)
                    next_obs, reward, terminated, truncated, next_info = env.step(action)
                    now = bool(next_info.get("is_success", False))
                    if now and since_success < 0:
                        since_success = 0
                    if since_success >= 0:
                        since_success += 1
                    last = since_success > LINGER or (step + 1 >= MAX_STEPS[task] and since_success < 0)
                    last = last or step + 1 >= MAX_STEPS[task] + LINGER
                    writer.add_frame({
                        **{k: v for k, v in obs.items() if k in writer.features},
                        "action": action,
                        "next.reward": np.array([float(now)], dtype=np.float32),
                        "next.done": np.array([last]),
                        "next.success": np.array([now]),
                        "sim.success": np.array([success]),
                        "sim.progress": np.array([p], dtype=np.float32),
                        "sim.behavior": behavior if not mode else f"failing:{mode}",
                        "task": obs["task"],
                    })
                    obs, success = next_obs, now
                    if last:
                        break
                writer.save_episode()
                counts[f"{task}/{behavior}"] = counts.get(f"{task}/{behavior}", 0) + 1
                bar.update(1)
    finally:
        bar.close()
        writer.finalize()
        for env in envs.values():
            env.close()
    return {"root": str(root), "episodes": writer.num_episodes, "frames": writer.num_frames, "counts": counts,
            "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--episodes_per_task", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image_size", type=int, default=64)
    ap.add_argument("--tasks", default="PickPlace,Lift")
    args = ap.parse_args()
    print(json.dumps(generate(args.out, tasks=tuple(args.tasks.split(",")), episodes_per_task=args.episodes_per_task,
                              seed=args.seed, image_size=args.image_size), indent=2))
