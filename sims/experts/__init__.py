"""Scripted experts that record demonstrations: ``make_expert(task, env)`` returns one for a task.

Every expert has ``reset()`` (call at each episode start) and ``act(env) -> action``; it reads the env's privileged
state through ``env.unwrapped``, so the same expert drives every backend of its task.
"""

from __future__ import annotations

from typing import Any

from ember.sims.errors import SimError

EXPERT_TASKS = ("PushT", "Reach", "PickPlace", "Stack", "Lift", "Drawer")


def make_expert(task: str, env: Any = None, **kwargs: Any):
    """The scripted expert of ``task`` (``env`` is accepted for symmetry; experts read it at ``act`` time)."""
    from ember.sims import resolve_task

    name = resolve_task(task)
    if name == "PushT":
        from ember.sims.experts.pusht import PushTExpert, PushTExpertConfig

        return PushTExpert(PushTExpertConfig(**kwargs) if kwargs else None)
    if name in EXPERT_TASKS:
        from ember.sims.experts.tabletop import TabletopExpert, TabletopExpertConfig

        return TabletopExpert(name, TabletopExpertConfig(**kwargs) if kwargs else None)
    raise SimError(f"no scripted expert for task '{task}'; experts exist for: {', '.join(EXPERT_TASKS)}.")


__all__ = ["EXPERT_TASKS", "make_expert"]
