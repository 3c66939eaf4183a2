"""Reach: move the fingertips to the named one of several coloured floating targets.

Why several targets: the instruction then carries information (which colour), so even the simplest task is
language-conditioned and a policy that ignores ``task`` fails about 2 times in 3.

Progress (``info["progress"]``, :mod:`ember.sims.tabletop.progress`): the fingertips' way from their start to the named
target 0.9 (as a fraction of the start distance), within ``success_distance`` of it (success) 0.1; 1.0 exactly at
success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.sims.errors import SimError
from ember.sims.tabletop.progress import approach, staged_progress
from ember.sims.tabletop.sampling import nominal_grid, sample_xy
from ember.sims.tabletop.scene import REGION_HIGH, REGION_LOW, MarkerSpec, Placement
from ember.sims.tabletop.task import Episode, Task, TaskConfig
from ember.sims.tabletop.world import World

Z_RANGE = (0.05, 0.30)
MIN_SEPARATION = 0.1
MARKER_RADIUS = 0.02


@dataclass(frozen=True)
class ReachConfig(TaskConfig):
    num_targets: int = 3
    """Coloured targets in the scene; the instruction names one."""
    success_distance: float = 0.02
    """Success when the end effector is within this distance (m) of the named target's centre."""

    def __post_init__(self) -> None:
        if not 1 <= self.num_targets <= 4:
            raise SimError(f"Reach: num_targets must be in [1, 4], got {self.num_targets}.")
        if not 0.005 <= self.success_distance <= 0.1:
            raise SimError(f"Reach: success_distance must be in [0.005, 0.1] m, got {self.success_distance}.")


class ReachTask(Task):
    name = "Reach"
    config_cls = ReachConfig
    max_episode_steps = 50
    templates = (
        "reach the {obj}",
        "move the gripper to the {obj}",
        "touch the {obj} with the gripper",
        "put the fingertips on the {obj}",
        "go to the {obj}",
    )
    cfg: ReachConfig

    @property
    def marker_shape(self) -> str:
        return "cylinder" if self.split.shape == "cylinder" else "sphere"

    def task_objects(self) -> tuple:
        return ()

    def markers(self) -> tuple[MarkerSpec, ...]:
        size = (MARKER_RADIUS, MARKER_RADIUS) if self.marker_shape == "cylinder" else (MARKER_RADIUS,)
        return tuple(MarkerSpec(f"target_{i}", self.marker_shape, size) for i in range(self.cfg.num_targets))

    def sample(self, rng: np.random.Generator) -> Episode:
        layout = self.base_layout(rng)
        n = self.cfg.num_targets
        goal = int(rng.integers(n))
        colors = self.colors(rng, n)
        nominal = nominal_grid(n, 0.5)
        taken: list[np.ndarray] = []
        for i in range(n):
            if self.rand.object_poses:
                pos = self._sample_xyz(rng, taken, heldout=self.split.heldout_goals if i == goal else None)
            else:
                pos = np.r_[nominal[i], 0.15]
                taken.append(pos)
            layout.markers[f"target_{i}"] = Placement(pos, 0.0, self.rgba(colors[i]))
        taken_xy = [t[:2] for t in taken]
        self.place_distractors(layout, rng, taken_xy)
        noun = "ball" if self.marker_shape == "sphere" else "cylinder"
        text = self.instruction(rng, obj=f"{colors[goal]} {noun}")
        return Episode(
            layout, text, {"target": f"target_{goal}", "target_index": goal, "color": colors[goal]}
        )

    @staticmethod
    def _sample_xyz(rng: np.random.Generator, taken: list[np.ndarray], heldout: bool | None) -> np.ndarray:
        return sample_xy(
            rng,
            taken,
            MIN_SEPARATION,
            np.r_[REGION_LOW, Z_RANGE[0]],
            np.r_[REGION_HIGH, Z_RANGE[1]],
            heldout=heldout,
            failure="Reach: could not place the targets apart; use fewer targets.",
        )

    def goal_pos(self, episode: Episode) -> np.ndarray:
        return episode.layout.markers[episode.goal["target"]].pos

    def evaluate(self, world: World, episode: Episode) -> dict[str, Any]:
        goal = self.goal_pos(episode)
        error = float(np.linalg.norm(world.ee_pos() - goal))
        success = error <= self.cfg.success_distance
        progress = staged_progress([(0.9, approach(world, goal, goal)), (0.1, float(success))])
        return {"is_success": success, "goal_error": error, "progress": progress}

    def feature_names(self) -> list[str]:
        n = self.cfg.num_targets
        return [f"target_{i}.{a}" for i in range(n) for a in "xyz"] + [
            f"goal_is_target_{i}" for i in range(n)
        ]

    def features(self, world: World, episode: Episode) -> np.ndarray:
        n = self.cfg.num_targets
        pos = [episode.layout.markers[f"target_{i}"].pos for i in range(n)]
        return np.concatenate([*pos, np.eye(n)[episode.goal["target_index"]]])
