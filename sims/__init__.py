"""Simulated tasks as Gymnasium environments (``ember/<Task>-v0``), registered on import.

Every env returns LeRobot-keyed observation dicts (see DESIGN.md, "Contracts"). Backends: MuJoCo now; PyBullet
comes in a later issue. Use :func:`make_env` to build one by task name with validated options.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium

from sims.errors import SimError

TASKS: dict[str, dict[str, str]] = {
    # task -> backend -> entry point
    "PushT": {"mujoco": "sims.mujoco.pusht:PushTEnv"},
}
BACKENDS = ("mujoco",)
PLANNED_BACKENDS = ("pybullet",)


def env_id(task: str) -> str:
    return f"ember/{resolve_task(task)}-v0"


def resolve_task(task: str) -> str:
    """Canonical task name: accepts 'PushT', 'pusht' or 'ember/PushT-v0'."""
    key = str(task).strip()
    if key.startswith("ember/"):
        key = key[len("ember/"):].rsplit("-v", 1)[0]
    for name in TASKS:
        if name.lower() == key.lower():
            return name
    raise SimError(f"unknown task '{task}'; valid tasks: {', '.join(TASKS)}.")


def _register() -> None:
    for task, backends in TASKS.items():
        gym_id = f"ember/{task}-v0"
        if gym_id not in gymnasium.registry:
            # No max_episode_steps here: the env truncates itself (its own ``max_episode_steps`` kwarg), so one
            # TimeLimit does not hide another. Note gymnasium.make(id, max_episode_steps=N) still adds a TimeLimit.
            gymnasium.register(gym_id, entry_point=backends["mujoco"], disable_env_checker=False)


def make_env(task: str, backend: str = "mujoco", **kwargs: Any) -> gymnasium.Env:
    """Build a task's environment (with Gymnasium's standard wrappers); ``kwargs`` go to its constructor.

    Unlike ``gymnasium.make``, ``max_episode_steps`` is passed to the env itself, not to a TimeLimit wrapper.
    """
    name = resolve_task(task)
    if backend not in TASKS[name]:
        raise SimError(f"unknown backend '{backend}' for task '{name}'; valid backends: {', '.join(TASKS[name])} "
                       f"({', '.join(PLANNED_BACKENDS)} comes in a later issue).")
    spec = dataclasses.replace(gymnasium.spec(env_id(name)), entry_point=TASKS[name][backend])
    spec = dataclasses.replace(spec, kwargs={**spec.kwargs, **kwargs})
    return gymnasium.make(spec)


_register()

__all__ = ["BACKENDS", "SimError", "TASKS", "env_id", "make_env", "resolve_task"]
