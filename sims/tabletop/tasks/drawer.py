"""Drawer: a continuous-goal task in ARNOLD's sense: "open the drawer 40 percent".

A cabinet with one drawer stands on the table, front facing the robot; its handle sticks out toward the robot so a
gripper pointing down can pinch it. The goal is the opening as a percentage of the drawer's travel, stated in the
instruction. Success: the opening is within ``tolerance`` (fraction of travel) of the goal and the drawer is nearly
still. ``heldout_goal`` draws percentages ``train`` never uses.

Progress (``info["progress"]``, :mod:`ember.sims.tabletop.progress`): the end effector's way to the handle 0.3, the opening
toward the goal 0.55 (``1 - |opening - goal| / goal``: 0 closed, 1 at the goal, falling again beyond it), held there
still (success) 0.15; 1.0 exactly at success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.sims.errors import SimError
from ember.sims.tabletop.progress import approach, staged_progress
from ember.sims.tabletop.scene import DrawerSpec, Placement, drawer_handle_offset
from ember.sims.tabletop.task import Episode, Task, TaskConfig
from ember.sims.tabletop.world import World

TRAIN_PERCENT: tuple[int, ...] = (20, 25, 30, 35, 50, 55, 60, 65, 80, 85, 90)
HELDOUT_PERCENT: tuple[int, ...] = (40, 45, 70, 75)
CABINET_X = (0.64, 0.68)
CABINET_Y = (-0.12, 0.12)


@dataclass(frozen=True)
class DrawerConfig(TaskConfig):
    tolerance: float = 0.05
    """Success band around the goal, as a fraction of the drawer's travel (0.05 = +-5 percentage points)."""
    max_speed: float = 0.02
    """The drawer must move slower than this (m/s) for the opening to count."""

    def __post_init__(self) -> None:
        if not 0.01 <= self.tolerance <= 0.2:
            raise SimError(f"Drawer: tolerance must be in [0.01, 0.2], got {self.tolerance}.")


class DrawerTask(Task):
    name = "Drawer"
    config_cls = DrawerConfig
    max_episode_steps = 100
    templates = (
        "open the drawer {value} percent",
        "pull the drawer open to {value} percent",
        "open the drawer to {value} percent of the way",
        "slide the drawer out {value} percent",
        "pull the drawer out until it is {value} percent open",
    )
    cfg: DrawerConfig

    def task_objects(self) -> tuple:
        return ()

    def drawer(self) -> DrawerSpec:
        return DrawerSpec(handle="cylinder" if self.split.shape == "cylinder" else "box")

    def sample(self, rng: np.random.Generator) -> Episode:
        layout = self.base_layout(rng)
        spec = self.drawer()
        values = HELDOUT_PERCENT if self.split.heldout_goals else TRAIN_PERCENT
        value = int(values[int(rng.integers(len(values)))])
        if self.rand.object_poses:
            centre = np.array([rng.uniform(*CABINET_X), rng.uniform(*CABINET_Y)])
        else:
            centre = np.array([np.mean(CABINET_X), 0.0])
        color = self.colors(rng, 1)[0]
        layout.drawer = Placement(np.r_[centre, 0.0], 0.0, self.rgba(color))
        # Keep distractors off the cabinet and out of the drawer's path.
        hx, hy, _ = spec.cabinet_half
        reach = hx + spec.travel + spec.handle_length
        taken = [
            np.array([x, y])
            for x in np.arange(centre[0] - reach, centre[0] + hx + 0.01, 0.05)
            for y in np.arange(centre[1] - hy, centre[1] + hy + 0.01, 0.05)
        ]
        self.place_distractors(layout, rng, taken)
        text = self.instruction(rng, value=value)
        return Episode(layout, text, {"opening": value / 100.0})

    def handle_pos(self, world: World, episode: Episode) -> np.ndarray:
        """Where the handle's centre is now (it moves with the drawer, toward -x)."""
        opening, _ = world.drawer_state()
        assert episode.layout.drawer is not None
        return episode.layout.drawer.pos + drawer_handle_offset(self.drawer()) - np.array([opening, 0.0, 0.0])

    def evaluate(self, world: World, episode: Episode) -> dict[str, Any]:
        opening, speed = world.drawer_state()
        fraction = opening / self.drawer().travel
        error = abs(fraction - episode.goal["opening"])
        success = error <= self.cfg.tolerance and abs(speed) <= self.cfg.max_speed
        assert episode.layout.drawer is not None
        handle_start = episode.layout.drawer.pos + drawer_handle_offset(self.drawer())
        progress = staged_progress(
            [
                (0.3, approach(world, self.handle_pos(world, episode), handle_start)),
                (0.55, 1.0 - error / episode.goal["opening"]),
                (0.15, float(success)),
            ]
        )
        return {
            "is_success": bool(success),
            "goal_error": float(error),
            "goal_value": episode.goal["opening"],
            "opening": float(fraction),
            "progress": progress,
        }

    def feature_names(self) -> list[str]:
        return ["handle.x", "handle.y", "handle.z", "drawer_opening", "goal_opening"]

    def features(self, world: World, episode: Episode) -> np.ndarray:
        opening, _ = world.drawer_state()
        return np.concatenate(
            [self.handle_pos(world, episode), [opening / self.drawer().travel, episode.goal["opening"]]]
        )
