"""Scripted experts that record demonstrations: ``make_expert(task, env)`` returns one for a task."""

from __future__ import annotations

from typing import Any

from sims.errors import SimError

EXPERT_TASKS = ("PushT",)


def make_expert(task: str, env: Any = None, **kwargs: Any):
    """The scripted expert of ``task`` (``env`` is accepted for symmetry; experts read it at ``act`` time)."""
    from sims import resolve_task

    name = resolve_task(task)
    if name == "PushT":
        from sims.experts.pusht import PushTExpert, PushTExpertConfig

        return PushTExpert(PushTExpertConfig(**kwargs) if kwargs else None)
    raise SimError(f"no scripted expert for task '{task}'; experts exist for: {', '.join(EXPERT_TASKS)}.")


__all__ = ["EXPERT_TASKS", "make_expert"]
