"""Simulated tasks as Gymnasium environments (``ember/<Task>-v0``), registered on import.

Every env returns LeRobot-keyed observation dicts (see docs/design.md, "Observation and action") and takes
``backend=`` to pick the simulator: ``gymnasium.make("ember/PickPlace-v0", backend="pybullet")``. Use
:func:`make_env` to build one by task name with validated options (it passes ``max_episode_steps`` to the env
instead of a TimeLimit wrapper).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless by default; set before mujoco is first imported

import dataclasses
import importlib
from typing import Any

import gymnasium

from ember.sims.errors import SimError
from ember.sims.splits import SPLITS

_TABLETOP = "ember.sims.tabletop.env:TabletopEnv"
TASKS: dict[str, dict[str, str]] = {
    # task -> backend -> entry point (a tabletop entry also gets task= and backend=)
    "PushT": {"mujoco": "ember.sims.mujoco.pusht:PushTEnv", "pybullet": "ember.sims.pybullet.pusht:PushTEnv"},
    "Reach": {"mujoco": _TABLETOP, "pybullet": _TABLETOP, "isaacgym": _TABLETOP},
    "PickPlace": {"mujoco": _TABLETOP, "pybullet": _TABLETOP},
    "Stack": {"mujoco": _TABLETOP},
    "Lift": {"mujoco": _TABLETOP},
    "Drawer": {"mujoco": _TABLETOP},
}
BACKENDS = ("mujoco", "pybullet", "isaacgym")
"""Every backend some task offers; ``TASKS[task]`` lists a task's own. Isaac Gym needs NVIDIA's package and a GPU."""


def env_id(task: str) -> str:
    return f"ember/{resolve_task(task)}-v0"


def resolve_task(task: str) -> str:
    """Canonical task name: accepts 'PushT', 'pusht' or 'ember/PushT-v0'."""
    key = str(task).strip()
    if key.startswith("ember/"):
        key = key[len("ember/") :].rsplit("-v", 1)[0]
    for name in TASKS:
        if name.lower() == key.lower():
            return name
    raise SimError(f"unknown task '{task}'; valid tasks: {', '.join(TASKS)}.")


def check_backend(task: str, backend: str) -> str:
    name = resolve_task(task)
    if backend not in TASKS[name]:
        hint = f" (known backends: {', '.join(BACKENDS)})" if backend not in BACKENDS else ""
        raise SimError(
            f"unknown backend '{backend}' for task '{name}'; valid backends: {', '.join(TASKS[name])}{hint}."
        )
    return backend


def create(task: str, backend: str = "mujoco", **kwargs: Any) -> gymnasium.Env:
    """The registered entry point of every ``ember/*`` id: the task's env class for ``backend``."""
    name = resolve_task(task)
    module, cls = TASKS[name][check_backend(name, backend)].split(":")
    env_cls = getattr(importlib.import_module(module), cls)
    if TASKS[name][backend] == _TABLETOP:
        return env_cls(task=name, backend=backend, **kwargs)
    return env_cls(**kwargs)


def _register() -> None:
    for task in TASKS:
        gym_id = f"ember/{task}-v0"
        if gym_id not in gymnasium.registry:
            # No max_episode_steps here: the env truncates itself (its own ``max_episode_steps`` kwarg), so one
            # TimeLimit does not hide another. Note gymnasium.make(id, max_episode_steps=N) still adds a TimeLimit.
            gymnasium.register(
                gym_id, entry_point="ember.sims:create", kwargs={"task": task}, disable_env_checker=False
            )


def make_env(task: str, backend: str = "mujoco", **kwargs: Any) -> gymnasium.Env:
    """Build a task's environment (with Gymnasium's standard wrappers); ``kwargs`` go to its constructor.

    Unlike ``gymnasium.make``, ``max_episode_steps`` is passed to the env itself, not to a TimeLimit wrapper.
    """
    name = resolve_task(task)
    check_backend(name, backend)
    spec = gymnasium.spec(env_id(name))
    spec = dataclasses.replace(spec, kwargs={**spec.kwargs, "backend": backend, **kwargs})
    return gymnasium.make(spec)


_register()

__all__ = [
    "BACKENDS",
    "SPLITS",
    "SimError",
    "TASKS",
    "check_backend",
    "create",
    "env_id",
    "make_env",
    "resolve_task",
]
