"""Stack: put the named cube on top of the other named cube (a third cube is a distractor of the same kind).

The goal is the ordered colour pair. ``heldout_goal`` asks for pairs that ``train`` never asks for (by palette
position: (0, 1), (1, 2), (2, 3), (3, 0) as (top, bottom)), so it tests composition of known colours.

Progress (``info["progress"]``, :mod:`ember.sims.tabletop.progress`): pick and place with the bottom cube as the goal:
approach the top cube 0.15, grasp 0.15, lift 0.1, carry it over the bottom cube 0.35, lower it onto it 0.1, release
(success) 0.15; 1.0 exactly at success.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from typing import Any

import numpy as np

from ember.sims.errors import SimError
from ember.sims.tabletop.progress import pick_and_place
from ember.sims.tabletop.sampling import nominal_grid, sample_xy
from ember.sims.tabletop.scene import Placement
from ember.sims.tabletop.task import Episode, Task, TaskConfig
from ember.sims.tabletop.tasks.pick_place import YAW_RANGE
from ember.sims.tabletop.world import GRIPPER, World

MIN_SEPARATION = 0.1
HELDOUT_PAIRS = frozenset({(0, 1), (1, 2), (2, 3), (3, 0)})
"""(top, bottom) palette positions asked for only in ``heldout_goal``."""


@dataclass(frozen=True)
class StackConfig(TaskConfig):
    num_objects: int = 3
    xy_tolerance: float = 0.02
    """Success when the top cube's centre is within this distance (m, in x-y) of the bottom cube's centre."""

    def __post_init__(self) -> None:
        if not 2 <= self.num_objects <= 4:
            raise SimError(f"Stack: num_objects must be in [2, 4], got {self.num_objects}.")
        if not 0.005 <= self.xy_tolerance <= 0.03:
            raise SimError(f"Stack: xy_tolerance must be in [0.005, 0.03] m, got {self.xy_tolerance}.")


class StackTask(Task):
    name = "Stack"
    config_cls = StackConfig
    max_episode_steps = 120
    templates = (
        "stack the {top} on the {bottom}",
        "put the {top} on top of the {bottom}",
        "place the {top} onto the {bottom}",
        "pick up the {top} and stack it on the {bottom}",
        "build a tower with the {top} on the {bottom}",
    )
    cfg: StackConfig

    def task_objects(self) -> tuple:
        return tuple(self.object_spec(f"object_{i}") for i in range(self.cfg.num_objects))

    def sample(self, rng: np.random.Generator) -> Episode:
        layout = self.base_layout(rng)
        n = self.cfg.num_objects
        palette = list(self.split.palette)
        usable = range(len(palette)) if self.rand.colors else range(n)
        pairs = [p for p in permutations(usable, 2) if (p in HELDOUT_PAIRS) == self.split.heldout_goals]
        top_c, bottom_c = pairs[int(rng.integers(len(pairs)))]
        others = [c for c in usable if c not in (top_c, bottom_c)]
        rest = (
            [others[i] for i in rng.permutation(len(others))[: n - 2]]
            if self.rand.colors
            else others[: n - 2]
        )
        slots = rng.permutation(n) if self.rand.colors else np.arange(n)
        color_idx = np.empty(n, dtype=int)
        color_idx[slots] = [top_c, bottom_c, *rest]
        top, bottom = int(slots[0]), int(slots[1])
        taken: list[np.ndarray] = []
        nominal = nominal_grid(n, 0.5)
        for i, spec in enumerate(self.objects):
            xy = sample_xy(rng, taken, MIN_SEPARATION, nominal=None if self.rand.object_poses else nominal[i])
            yaw = float(rng.uniform(-YAW_RANGE, YAW_RANGE)) if self.rand.object_poses else 0.0
            layout.objects[spec.name] = Placement(
                np.r_[xy, spec.half_height], yaw, self.rgba(palette[color_idx[i]])
            )
        self.place_distractors(layout, rng, taken)
        text = self.instruction(
            rng, top=f"{palette[top_c]} {self.noun}", bottom=f"{palette[bottom_c]} {self.noun}"
        )
        return Episode(
            layout,
            text,
            {
                "object": f"object_{top}",
                "target": f"object_{bottom}",
                "object_index": top,
                "target_index": bottom,
            },
        )

    def evaluate(self, world: World, episode: Episode) -> dict[str, Any]:
        top, bottom = episode.goal["object"], episode.goal["target"]
        half = self.objects[0].half_height
        p_top, _ = world.object_pose(top)
        p_bottom, _ = world.object_pose(bottom)
        error = float(np.linalg.norm(p_top[:2] - p_bottom[:2]))
        on_top = abs(p_top[2] - p_bottom[2] - 2 * half) <= 0.01 and p_bottom[2] <= half + 0.01
        success = error <= self.cfg.xy_tolerance and on_top and not world.touching(top, GRIPPER)
        progress = pick_and_place(
            world,
            top,
            episode.layout.objects[top].pos,
            float(p_bottom[2] + 2 * half),
            p_bottom[:2],
            episode.layout.objects[bottom].pos[:2],
            self.cfg.xy_tolerance,
            success,
        )
        return {"is_success": bool(success), "goal_error": error, "progress": progress}

    def feature_names(self) -> list[str]:
        n = self.cfg.num_objects
        return (
            [f"object_{i}.{a}" for i in range(n) for a in "xyz"]
            + [f"goal_top_is_object_{i}" for i in range(n)]
            + [f"goal_bottom_is_object_{i}" for i in range(n)]
        )

    def features(self, world: World, episode: Episode) -> np.ndarray:
        n = self.cfg.num_objects
        objs = [world.object_pose(f"object_{i}")[0] for i in range(n)]
        return np.concatenate(
            [*objs, np.eye(n)[episode.goal["object_index"]], np.eye(n)[episode.goal["target_index"]]]
        )
