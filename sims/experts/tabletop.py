"""Scripted experts for the tabletop tasks: closed-loop waypoints, turned into actions by the env's own IK.

Why waypoints: demonstrations should be smooth and repeatable, the same situation always giving the same motion, so
that an imitation policy can fit them; a short list of phases (above the object, down, close, up, over the goal,
down, open, away) does that and reads like what a person would do. Each phase recomputes its target from the
privileged state every step (``env.unwrapped.episode`` and ``world``), so a nudged object is still grasped.

The expert is backend-agnostic: it reads only the ``World`` API and the env's commanded end-effector position, and
outputs an ``ee_delta`` step toward the current waypoint, or, in a ``joint_pos`` env, the joint targets that reach
it (``env.joint_action``, the backend's IK). The same expert therefore drives MuJoCo and PyBullet.

The plans read the episode's goal through :meth:`TabletopExpert.goal`, so ``reset(goal_override=...)`` can send the
expert after a wrong object or place (failing demonstrations, :mod:`ember.sims.experts.behaviors`) while the env still
scores the episode's real goal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.robots.spec import EE_DELTA
from ember.sims.errors import SimError

OPEN, CLOSED = -1.0, 1.0


@dataclass(frozen=True)
class TabletopExpertConfig:
    """Distances in metres; steps are control steps (10 Hz)."""

    approach_height: float = 0.08
    """Height above the grasp point from which the gripper descends vertically."""
    carry_height: float = 0.16
    """Height of the object's centre while carried (clears the other objects and distractors)."""
    tolerance: float = 0.006
    """A waypoint is reached when the commanded and measured end effector are this close to it."""
    grasp_steps: int = 5
    release_steps: int = 4
    place_clearance: float = 0.004
    """Release the object this far above its resting height."""
    fine_gain: float = 0.6
    """Fraction of the remaining error commanded per step in the final approach of continuous goals."""


Target = Callable[[Any], np.ndarray]
Done = Callable[[Any, int], bool]


@dataclass(frozen=True)
class Phase:
    name: str
    target: Target
    """End-effector waypoint (world frame) as a function of the unwrapped env."""
    gripper: float
    done: Done
    """Whether the phase is over, given the env and the steps spent in it."""


class TabletopExpert:
    """Runs a task's phase list; call ``reset()`` at each episode start and ``act(env)`` each step."""

    def __init__(self, task: str, config: TabletopExpertConfig | None = None) -> None:
        if task not in _PLANS:
            raise SimError(f"no tabletop expert for '{task}'; valid: {', '.join(_PLANS)}.")
        self.task = task
        self.cfg = config or TabletopExpertConfig()
        self.reset()

    def reset(self, goal_override: dict[str, Any] | None = None) -> None:
        """Start an episode; ``goal_override`` replaces entries of the episode's goal for this expert only."""
        self.phases: list[Phase] | None = None
        self.index = 0
        self.steps_in_phase = 0
        self.memory: dict[str, Any] = {}
        self.goal_override: dict[str, Any] = dict(goal_override or {})

    def goal(self, u: Any) -> dict[str, Any]:
        """The goal this expert goes for: the episode's, with :attr:`goal_override` applied."""
        return {**u.episode.goal, **self.goal_override}

    @property
    def phase(self) -> str:
        return (
            "done" if self.phases is None or self.index >= len(self.phases) else self.phases[self.index].name
        )

    def act(self, env: Any) -> np.ndarray:
        u = env.unwrapped
        if self.phases is None:
            self.phases = _PLANS[self.task](self, u)
        while self.index < len(self.phases) and self.phases[self.index].done(u, self.steps_in_phase):
            self.index += 1
            self.steps_in_phase = 0
        phase = self.phases[min(self.index, len(self.phases) - 1)]
        target = np.clip(phase.target(u), u.workspace_low, u.workspace_high)
        self.steps_in_phase += 1
        if u.action_space_type == EE_DELTA:
            step = np.clip(target - u.commanded_ee_pos, u.action_space.low[:3], u.action_space.high[:3])
            return np.append(step, phase.gripper).astype(np.float32)
        limit = float(u.cfg.max_ee_delta)
        nxt = u.commanded_ee_pos + np.clip(target - u.commanded_ee_pos, -limit, limit)
        return u.joint_action(nxt, phase.gripper)

    # ------------------------------------------------------------------ phase helpers
    def reached(self, target: Target, tol: float | None = None) -> Done:
        """Done when both the commanded and the measured end effector are within ``tol`` of ``target``."""
        tol = self.cfg.tolerance if tol is None else tol

        def done(u: Any, _: int) -> bool:
            t = np.clip(target(u), u.workspace_low, u.workspace_high)
            return (
                np.linalg.norm(u.commanded_ee_pos - t) <= tol and np.linalg.norm(u.world.ee_pos() - t) <= tol
            )

        return done

    @staticmethod
    def after(steps: int) -> Done:
        return lambda u, n: n >= steps

    @staticmethod
    def never(u: Any, n: int) -> bool:
        return False

    def pick(self, name: Callable[[Any], str]) -> list[Phase]:
        """Above the object, down to its centre, close, and up to the carry height."""
        cfg = self.cfg

        def obj(u: Any) -> np.ndarray:
            return u.world.object_pose(name(u))[0]

        def above(u: Any) -> np.ndarray:
            return obj(u) + [0.0, 0.0, cfg.approach_height]

        def grasp_point(u: Any) -> np.ndarray:
            if (
                "grasp" not in self.memory
            ):  # frozen once closing starts, so the fingers do not chase the object
                self.memory["grasp"] = obj(u)
            return self.memory["grasp"]

        def lift(u: Any) -> np.ndarray:
            return np.r_[self.memory["grasp"][:2], cfg.carry_height]

        return [
            Phase("approach", above, OPEN, self.reached(above, tol=0.015)),
            Phase("descend", obj, OPEN, self.reached(obj)),
            Phase("grasp", grasp_point, CLOSED, self.after(cfg.grasp_steps)),
            Phase("lift", lift, CLOSED, self.reached(lift, tol=0.02)),
        ]

    def place(self, goal_xy: Callable[[Any], np.ndarray], rest_z: Callable[[Any], float]) -> list[Phase]:
        """Carry over ``goal_xy``, lower until the object's centre is at ``rest_z``, open, and move up."""
        cfg = self.cfg

        def carry(u: Any) -> np.ndarray:
            return np.r_[goal_xy(u), cfg.carry_height]

        def lower(u: Any) -> np.ndarray:
            if "place" not in self.memory:
                self.memory["place"] = np.r_[goal_xy(u), rest_z(u) + cfg.place_clearance]
            return self.memory["place"]

        def retreat(u: Any) -> np.ndarray:
            return self.memory["place"] + [0.0, 0.0, 0.1]

        return [
            Phase("carry", carry, CLOSED, self.reached(carry, tol=0.01)),
            Phase("lower", lower, CLOSED, self.reached(lower)),
            Phase("release", lower, OPEN, self.after(cfg.release_steps)),
            Phase("retreat", retreat, OPEN, self.never),
        ]


# ---------------------------------------------------------------------- per-task plans
def _reach(expert: TabletopExpert, u: Any) -> list[Phase]:
    def goal(env: Any) -> np.ndarray:
        return env.episode.layout.markers[expert.goal(env)["target"]].pos

    return [Phase("reach", goal, OPEN, expert.never)]


def _pick_place(expert: TabletopExpert, u: Any) -> list[Phase]:
    def obj(env: Any) -> str:
        return expert.goal(env)["object"]

    def pad(env: Any) -> np.ndarray:
        return env.episode.layout.markers[expert.goal(env)["target"]].pos[:2]

    def rest(env: Any) -> float:
        return env.task.objects[expert.goal(env)["object_index"]].half_height

    return expert.pick(obj) + expert.place(pad, rest)


def _stack(expert: TabletopExpert, u: Any) -> list[Phase]:
    def top(env: Any) -> str:
        return expert.goal(env)["object"]

    def bottom(env: Any) -> np.ndarray:
        return env.world.object_pose(expert.goal(env)["target"])[0]

    def rest(env: Any) -> float:
        half = env.task.objects[0].half_height
        return float(bottom(env)[2] + 2 * half)

    return expert.pick(top) + expert.place(lambda env: bottom(env)[:2], rest)


def _lift(expert: TabletopExpert, u: Any) -> list[Phase]:
    cfg = expert.cfg

    def hold(env: Any) -> np.ndarray:
        # Closed loop on the object's measured height: the fingers may hold it a little off-centre.
        goal = expert.goal(env)
        bottom = (
            env.world.object_pose(goal["object"])[0][2] - env.task.objects[goal["object_index"]].half_height
        )
        error = goal["height"] - bottom
        pos = env.commanded_ee_pos
        pos[:2] = expert.memory["grasp"][:2]
        pos[2] += float(np.clip(cfg.fine_gain * error, -0.03, 0.03))
        return pos

    phases = expert.pick(lambda env: expert.goal(env)["object"])[:3]
    return [*phases, Phase("hold", hold, CLOSED, expert.never)]


def _drawer(expert: TabletopExpert, u: Any) -> list[Phase]:
    cfg = expert.cfg

    def handle(env: Any) -> np.ndarray:
        return env.task.handle_pos(env.world, env.episode)

    def above(env: Any) -> np.ndarray:
        return handle(env) + [0.0, 0.0, cfg.approach_height]

    def grasp(env: Any) -> np.ndarray:
        if "grasp" not in expert.memory:
            expert.memory["grasp"] = handle(env)
        return expert.memory["grasp"]

    def pull(env: Any) -> np.ndarray:
        travel = env.task.drawer().travel
        opening, _ = env.world.drawer_state()
        error = expert.goal(env)["opening"] * travel - opening  # metres still to pull (toward -x)
        pos = env.commanded_ee_pos
        pos[0] -= float(np.clip(cfg.fine_gain * error, -0.03, 0.03))
        pos[1:] = expert.memory["grasp"][1:]
        return pos

    def settled(env: Any, n: int) -> bool:
        travel = env.task.drawer().travel
        opening, speed = env.world.drawer_state()
        return n >= 3 and abs(opening / travel - expert.goal(env)["opening"]) < 0.01 and abs(speed) < 0.005

    def retreat(env: Any) -> np.ndarray:
        return expert.memory["release"] + [0.0, 0.0, 0.1]

    def release(env: Any) -> np.ndarray:
        if "release" not in expert.memory:
            expert.memory["release"] = env.commanded_ee_pos
        return expert.memory["release"]

    return [
        Phase("approach", above, OPEN, expert.reached(above, tol=0.015)),
        Phase("descend", handle, OPEN, expert.reached(handle)),
        Phase("grasp", grasp, CLOSED, expert.after(cfg.grasp_steps)),
        Phase("pull", pull, CLOSED, settled),
        Phase("release", release, OPEN, expert.after(cfg.release_steps)),
        Phase("retreat", retreat, OPEN, expert.never),
    ]


_PLANS: dict[str, Callable[[TabletopExpert, Any], list[Phase]]] = {
    "Reach": _reach,
    "PickPlace": _pick_place,
    "Stack": _stack,
    "Lift": _lift,
    "Drawer": _drawer,
}
