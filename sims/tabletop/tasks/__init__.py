"""The tabletop tasks by name (``TABLETOP_TASKS``); each module holds one task and its config dataclass."""

from __future__ import annotations

from ember.sims.tabletop.task import Task
from ember.sims.tabletop.tasks.drawer import DrawerTask
from ember.sims.tabletop.tasks.lift import LiftTask
from ember.sims.tabletop.tasks.pick_place import PickPlaceTask
from ember.sims.tabletop.tasks.reach import ReachTask
from ember.sims.tabletop.tasks.stack import StackTask

TABLETOP_TASKS: dict[str, type[Task]] = {
    t.name: t for t in (ReachTask, PickPlaceTask, StackTask, LiftTask, DrawerTask)
}

__all__ = ["TABLETOP_TASKS", "DrawerTask", "LiftTask", "PickPlaceTask", "ReachTask", "StackTask"]
