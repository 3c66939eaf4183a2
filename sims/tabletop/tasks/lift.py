"""Lift: a continuous-goal task in ARNOLD's sense: "lift the red cube to 12 cm".

The goal is a height (cm, of the object's bottom above the table) stated in the instruction. Success: the named
object is held within ``tolerance`` of it and nearly still (so sweeping through the goal does not count).
Goal heights are whole centimetres; ``heldout_goal`` draws from bins ``train`` never uses.

Progress (``info["progress"]``, :mod:`ember.sims.tabletop.progress`): approach the named object 0.2, grasp it 0.2, bring
its bottom to the goal height 0.45 (``1 - |height - goal| / goal``: 0 on the table, 1 at the goal, falling again
above it), hold it there still (success) 0.15; 1.0 exactly at success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.sims.errors import SimError
from ember.sims.tabletop.progress import approach, holding, staged_progress
from ember.sims.tabletop.sampling import nominal_grid, sample_xy
from ember.sims.tabletop.scene import Placement
from ember.sims.tabletop.task import Episode, Task, TaskConfig
from ember.sims.tabletop.tasks.pick_place import YAW_RANGE
from ember.sims.tabletop.world import GRIPPER, World

TRAIN_HEIGHTS_CM: tuple[int, ...] = (5, 6, 7, 8, 11, 12, 13, 14, 17, 18, 19, 20)
HELDOUT_HEIGHTS_CM: tuple[int, ...] = (9, 10, 15, 16)
MIN_SEPARATION = 0.1


@dataclass(frozen=True)
class LiftConfig(TaskConfig):
    num_objects: int = 2
    """Objects on the table; the instruction names one."""
    tolerance: float = 0.01
    """Success band (m) around the goal height."""
    max_speed: float = 0.05
    """The object must move slower than this (m/s) to count as held at the height."""

    def __post_init__(self) -> None:
        if not 1 <= self.num_objects <= 4:
            raise SimError(f"Lift: num_objects must be in [1, 4], got {self.num_objects}.")
        if not 0.002 <= self.tolerance <= 0.05:
            raise SimError(f"Lift: tolerance must be in [0.002, 0.05] m, got {self.tolerance}.")


class LiftTask(Task):
    name = "Lift"
    config_cls = LiftConfig
    max_episode_steps = 100
    templates = (
        "lift the {obj} to {value} cm",
        "raise the {obj} {value} cm above the table",
        "pick up the {obj} and hold it {value} cm high",
        "hold the {obj} at a height of {value} cm",
        "lift the {obj} until it is {value} cm above the table",
    )
    cfg: LiftConfig

    def task_objects(self) -> tuple:
        return tuple(self.object_spec(f"object_{i}") for i in range(self.cfg.num_objects))

    def sample(self, rng: np.random.Generator) -> Episode:
        layout = self.base_layout(rng)
        n = self.cfg.num_objects
        obj = int(rng.integers(n))
        heights = HELDOUT_HEIGHTS_CM if self.split.heldout_goals else TRAIN_HEIGHTS_CM
        value = int(heights[int(rng.integers(len(heights)))])
        colors = self.colors(rng, n)
        taken: list[np.ndarray] = []
        nominal = nominal_grid(n, 0.5)
        for i, spec in enumerate(self.objects):
            xy = sample_xy(rng, taken, MIN_SEPARATION, nominal=None if self.rand.object_poses else nominal[i])
            yaw = float(rng.uniform(-YAW_RANGE, YAW_RANGE)) if self.rand.object_poses else 0.0
            layout.objects[spec.name] = Placement(np.r_[xy, spec.half_height], yaw, self.rgba(colors[i]))
        self.place_distractors(layout, rng, taken)
        text = self.instruction(rng, obj=f"{colors[obj]} {self.noun}", value=value)
        return Episode(
            layout, text, {"object": f"object_{obj}", "object_index": obj, "height": value / 100.0}
        )

    def height(self, world: World, episode: Episode) -> float:
        pos, _ = world.object_pose(episode.goal["object"])
        return float(pos[2] - self.objects[episode.goal["object_index"]].half_height)

    def evaluate(self, world: World, episode: Episode) -> dict[str, Any]:
        name = episode.goal["object"]
        goal = episode.goal["height"]
        error = abs(self.height(world, episode) - goal)
        still = float(np.linalg.norm(world.object_velocity(name))) <= self.cfg.max_speed
        success = error <= self.cfg.tolerance and still and world.touching(name, GRIPPER)
        pos, _ = world.object_pose(name)
        progress = staged_progress(
            [
                (0.2, approach(world, pos, episode.layout.objects[name].pos)),
                (0.2, float(holding(world, name))),
                (0.45, 1.0 - error / goal),
                (0.15, float(success)),
            ]
        )
        return {
            "is_success": bool(success),
            "goal_error": float(error),
            "goal_value": goal,
            "progress": progress,
        }

    def feature_names(self) -> list[str]:
        n = self.cfg.num_objects
        return (
            [f"object_{i}.{a}" for i in range(n) for a in "xyz"]
            + [f"goal_is_object_{i}" for i in range(n)]
            + ["goal_height"]
            + [f"goal_object.{a}" for a in "xyz"]
        )

    def features(self, world: World, episode: Episode) -> np.ndarray:
        n = self.cfg.num_objects
        objs = [world.object_pose(f"object_{i}")[0] for i in range(n)]
        return np.concatenate(
            [
                *objs,
                np.eye(n)[episode.goal["object_index"]],
                [episode.goal["height"]],
                objs[episode.goal["object_index"]],
            ]
        )  # the goal cube's position, resolved
