"""Experts that behave worse on purpose, so that a dataset holds something to label: noisy and failing rollouts.

Why: a reward labeler or a success / progress model is only measured by data where success and progress vary. A
dataset of clean expert demonstrations has one label (success) and one shape of progress; the behaviours here make
the rest, from the same scripted experts, seeded so that the same seed always gives the same behaviour:

* ``expert``: the scripted expert as it is;
* ``noisy``: the expert's action plus Gaussian noise, std ``action_noise`` times each action dimension's half-range
  (``ee_delta``: 0.1 = 4 mm per step at the default 4 cm limit; in absolute spaces such as ``joint_pos`` the range is
  the joint limits, so use a few hundredths), clipped to the action space, fresh every step;
* ``failing``, one of two failures:

  - ``wrong_target``: the expert goes for a wrong object or place (another cube, another pad, another height or
    opening, a turned T) while the env still scores the real goal;
  - ``early_stop``: the expert stops acting partway: once the simulator's progress has covered a fraction (drawn in
    [0.1, 0.8]) of the way from its start to 1, the arm holds still (a zero step, or the last joint / position
    target) with the gripper as it was, until the episode's time limit.

  A task with no wrong target to go for (one cube and one pad) fails by ``early_stop``.

The env's ``info["progress"]`` (each task's ground truth) drives ``early_stop``; nothing here changes what the env
observes or how it scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ember.robots.spec import EE_DELTA, GRIPPER_ACTION
from ember.sims.errors import SimError

BEHAVIORS = ("expert", "noisy", "failing")
FAILURES = ("wrong_target", "early_stop")
STOP_FRACTION = (0.1, 0.8)
"""``early_stop`` stops once progress has covered a fraction in this range of its way to 1."""
SALT = 0x5EED_BE
"""Keeps behaviour draws apart from the env's own use of the episode seed."""


@dataclass(frozen=True)
class Behavior:
    """What the actor of one episode does (see the module docstring); :func:`draw_behavior` makes it."""

    name: str = "expert"
    action_noise: float = 0.0
    """``noisy``: the noise std as a fraction of each action dimension's half-range."""
    failure: str = ""
    """``failing``: ``wrong_target`` or ``early_stop``; empty otherwise."""
    stop_fraction: float = 1.0
    """``early_stop``: stop acting once progress has covered this fraction of the way from its start to 1."""
    goal: dict[str, Any] = field(default_factory=dict)
    """``wrong_target``: the goal the expert goes for instead (tabletop goal entries, or a PushT ``pose``)."""


def behavior_rng(seed: int) -> np.random.Generator:
    """The generator of everything random about episode ``seed``'s behaviour (its draw, then its noise)."""
    return np.random.default_rng(np.random.SeedSequence(SALT, spawn_key=(int(seed),)))


def draw_behavior(
    name: str,
    env: Any,
    rng: np.random.Generator,
    noise_levels: tuple[float, ...] = (0.1,),
) -> Behavior:
    """A ``name`` behaviour for the episode ``env`` was just reset to; a noisy one takes one of ``noise_levels``."""
    if name not in BEHAVIORS:
        raise SimError(f"unknown behaviour '{name}'; valid: {', '.join(BEHAVIORS)}.")
    if name == "expert":
        return Behavior()
    if name == "noisy":
        if not noise_levels or min(noise_levels) < 0:
            raise SimError(f"noisy behaviour needs noise levels >= 0, got {list(noise_levels)}.")
        return Behavior("noisy", action_noise=float(noise_levels[int(rng.integers(len(noise_levels)))]))
    goal = wrong_goal(env, rng) if rng.random() < 0.5 else None
    if goal:
        return Behavior("failing", failure="wrong_target", goal=goal)
    return Behavior("failing", failure="early_stop", stop_fraction=float(rng.uniform(*STOP_FRACTION)))


class BehavingExpert:
    """An expert acting out a :class:`Behavior`: ``reset(env, behavior, rng)`` after ``env.reset``, then
    ``act(env, info)`` each step with the latest info (reset's, then each step's)."""

    def __init__(self, expert: Any) -> None:
        self.expert = expert
        self.behavior = Behavior()
        self._rng = np.random.default_rng(0)
        self._start: float | None = None
        self._stopped = False
        self._last: np.ndarray | None = None

    def reset(self, env: Any, behavior: Behavior, rng: np.random.Generator) -> None:
        self.behavior, self._rng = behavior, rng
        self._start, self._stopped, self._last = None, False, None
        if behavior.failure == "wrong_target":
            self.expert.reset(
                goal_override=behavior.goal.get("pose") if "pose" in behavior.goal else behavior.goal
            )
        else:
            self.expert.reset()

    def act(self, env: Any, info: dict[str, Any]) -> np.ndarray:
        b, u = self.behavior, env.unwrapped
        if b.failure == "early_stop":
            progress = float(info.get("progress", 0.0))
            if self._start is None:
                self._start = progress
            if progress >= self._start + b.stop_fraction * (1.0 - self._start) and self._last is not None:
                self._stopped = True
            if self._stopped:
                return hold_action(u, self._last)
        action = np.asarray(self.expert.act(env), dtype=np.float32)
        if b.action_noise > 0:
            low, high = u.action_space.low, u.action_space.high
            noise = self._rng.normal(0.0, b.action_noise, action.shape) * (high - low) / 2
            action = np.clip(action + noise, low, high).astype(np.float32)
        self._last = action
        return action


def hold_action(u: Any, last: np.ndarray) -> np.ndarray:
    """The action that keeps the arm where it is: a zero step (the gripper command kept) in ``ee_delta``, the last
    target in absolute spaces (``joint_pos``, ``ee_pos``)."""
    if u.action_space_type != EE_DELTA:
        return last.copy()
    hold = np.zeros_like(last)
    names = (getattr(u, "feature_names", {}) or {}).get("action") or []
    if names and names[-1] == GRIPPER_ACTION:
        hold[-1] = last[-1]
    return hold


# ---------------------------------------------------------------------- wrong targets, per task
def _other(rng: np.random.Generator, n: int, *exclude: int) -> int | None:
    choices = [i for i in range(n) if i not in exclude]
    return int(rng.choice(choices)) if choices else None


def _pick(rng: np.random.Generator, options: list[dict[str, Any]]) -> dict[str, Any] | None:
    return options[int(rng.integers(len(options)))] if options else None


def _reach(u: Any, rng: np.random.Generator) -> dict[str, Any] | None:
    j = _other(rng, u.task.cfg.num_targets, u.episode.goal["target_index"])
    return None if j is None else {"target": f"target_{j}", "target_index": j}


def _pick_place(u: Any, rng: np.random.Generator) -> dict[str, Any] | None:
    g, n = u.episode.goal, u.task.cfg.num_objects
    obj, pad = _other(rng, n, g["object_index"]), _other(rng, n, g["target_index"])
    options = []
    if obj is not None:
        options.append({"object": f"object_{obj}", "object_index": obj})
    if pad is not None:
        options.append({"target": f"pad_{pad}", "target_index": pad})
    return _pick(rng, options)


def _stack(u: Any, rng: np.random.Generator) -> dict[str, Any] | None:
    g, n = u.episode.goal, u.task.cfg.num_objects
    top, bottom = g["object_index"], g["target_index"]
    options = [
        {"object": f"object_{bottom}", "object_index": bottom, "target": f"object_{top}", "target_index": top}
    ]  # the right cubes the wrong way round
    other = _other(rng, n, top, bottom)
    if other is not None:
        options += [
            {"object": f"object_{other}", "object_index": other},
            {"target": f"object_{other}", "target_index": other},
        ]
    return _pick(rng, options)


def _lift(u: Any, rng: np.random.Generator) -> dict[str, Any] | None:
    from ember.sims.tabletop.tasks.lift import HELDOUT_HEIGHTS_CM, TRAIN_HEIGHTS_CM

    g = u.episode.goal
    options = []
    obj = _other(rng, u.task.cfg.num_objects, g["object_index"])
    if obj is not None:
        options.append({"object": f"object_{obj}", "object_index": obj})
    heights = [h / 100 for h in TRAIN_HEIGHTS_CM + HELDOUT_HEIGHTS_CM if abs(h / 100 - g["height"]) >= 0.04]
    options.append({"height": float(rng.choice(heights))})
    return _pick(rng, options)


def _drawer(u: Any, rng: np.random.Generator) -> dict[str, Any] | None:
    from ember.sims.tabletop.tasks.drawer import HELDOUT_PERCENT, TRAIN_PERCENT

    values = [
        v / 100 for v in TRAIN_PERCENT + HELDOUT_PERCENT if abs(v / 100 - u.episode.goal["opening"]) >= 0.2
    ]
    return {"opening": float(rng.choice(values))}


def _pusht(u: Any, rng: np.random.Generator) -> dict[str, Any] | None:
    x, y, yaw = u.goal_pose
    turn = float(rng.choice([-np.pi / 2, np.pi / 2, np.pi]))
    return {"pose": (float(x), float(y), float((yaw + turn + np.pi) % (2 * np.pi) - np.pi))}


_WRONG: dict[str, Callable[[Any, np.random.Generator], dict[str, Any] | None]] = {
    "Reach": _reach,
    "PickPlace": _pick_place,
    "Stack": _stack,
    "Lift": _lift,
    "Drawer": _drawer,
    "PushT": _pusht,
}


def wrong_goal(env: Any, rng: np.random.Generator) -> dict[str, Any] | None:
    """A goal other than the episode's for the expert to go for, or None when the task has none to offer."""
    u = env.unwrapped
    name = getattr(getattr(u, "task", None), "name", None) or ("PushT" if hasattr(u, "goal_pose") else None)
    fn = _WRONG.get(name or "")
    return fn(u, rng) if fn is not None else None
