"""PickPlace: several coloured cubes and coloured target pads; put the named cube on the named pad.

Cube and pad colours are drawn independently, so "the red cube on the blue target" and "the blue cube on the red
target" are different goals in the same scene: the policy has to read both colours.

Progress (``info["progress"]``, :mod:`ember.sims.tabletop.progress`): approach the named cube 0.15, grasp it 0.15, lift it
3 cm 0.1, carry it over the named pad 0.35 (its x-y way from where it started), lower it onto the pad 0.1, release it
there (success) 0.15; 1.0 exactly at success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ember.sims.errors import SimError
from ember.sims.tabletop.progress import pick_and_place
from ember.sims.tabletop.sampling import nominal_grid, sample_xy
from ember.sims.tabletop.scene import MarkerSpec, Placement
from ember.sims.tabletop.task import Episode, Task, TaskConfig
from ember.sims.tabletop.world import GRIPPER, World

PAD_HALF = 0.035
MIN_SEPARATION = 0.1
YAW_RANGE = np.pi / 12
"""Objects are drawn within +-15 degrees of the gripper's closing axis (a pointing-down gripper with fixed yaw
grasps them squarely; larger angles would need a yaw action)."""


@dataclass(frozen=True)
class PickPlaceConfig(TaskConfig):
    num_objects: int = 3
    """Cubes and pads (as many of each); the instruction names one of each."""
    place_tolerance: float = 0.03
    """Success when the named cube rests with its centre within this distance (m, in x-y) of the pad's centre."""

    def __post_init__(self) -> None:
        if not 1 <= self.num_objects <= 4:
            raise SimError(f"PickPlace: num_objects must be in [1, 4], got {self.num_objects}.")
        if not 0.005 <= self.place_tolerance <= PAD_HALF + 0.02:
            raise SimError(f"PickPlace: place_tolerance must be in [0.005, {PAD_HALF + 0.02}] m.")


class PickPlaceTask(Task):
    name = "PickPlace"
    config_cls = PickPlaceConfig
    max_episode_steps = 120
    templates = (
        "put the {obj} on the {target} target",
        "place the {obj} onto the {target} pad",
        "pick up the {obj} and put it on the {target} square",
        "move the {obj} to the {target} target",
        "set the {obj} down on the {target} mat",
    )
    cfg: PickPlaceConfig

    def task_objects(self) -> tuple:
        return tuple(self.object_spec(f"object_{i}") for i in range(self.cfg.num_objects))

    def markers(self) -> tuple[MarkerSpec, ...]:
        return tuple(
            MarkerSpec(f"pad_{i}", "box", (PAD_HALF, PAD_HALF, 0.0008)) for i in range(self.cfg.num_objects)
        )

    def sample(self, rng: np.random.Generator) -> Episode:
        layout = self.base_layout(rng)
        n = self.cfg.num_objects
        obj, pad = int(rng.integers(n)), int(rng.integers(n))
        obj_colors, pad_colors = self.colors(rng, n), self.colors(rng, n)
        taken: list[np.ndarray] = []
        nominal_pads, nominal_objs = nominal_grid(n, 0.9), nominal_grid(n, 0.1)
        for i in range(n):  # the named pad first, so that it can take a held-out cell
            j = (pad + i) % n
            xy = sample_xy(
                rng,
                taken,
                MIN_SEPARATION,
                heldout=self.split.heldout_goals if j == pad else None,
                nominal=None if self.rand.object_poses else nominal_pads[j],
            )
            layout.markers[f"pad_{j}"] = Placement(np.r_[xy, 0.0008], 0.0, self.rgba(pad_colors[j]))
        for i in range(n):
            spec = self.objects[i]
            xy = sample_xy(
                rng, taken, MIN_SEPARATION, nominal=None if self.rand.object_poses else nominal_objs[i]
            )
            yaw = float(rng.uniform(-YAW_RANGE, YAW_RANGE)) if self.rand.object_poses else 0.0
            layout.objects[spec.name] = Placement(np.r_[xy, spec.half_height], yaw, self.rgba(obj_colors[i]))
        self.place_distractors(layout, rng, taken)
        text = self.instruction(rng, obj=f"{obj_colors[obj]} {self.noun}", target=pad_colors[pad])
        return Episode(
            layout,
            text,
            {"object": f"object_{obj}", "target": f"pad_{pad}", "object_index": obj, "target_index": pad},
        )

    switch_goals = ("object", "target")

    def slots(self, episode: Episode, goal: dict[str, Any]) -> dict[str, str]:
        """The instruction's slot values for ``goal`` in this episode's layout."""
        obj = self.color_name(episode.layout.objects[goal["object"]].rgba)
        return {
            "obj": f"{obj} {self.noun}",
            "target": self.color_name(episode.layout.markers[goal["target"]].rgba),
        }

    def retarget(self, episode: Episode, rng: np.random.Generator, what: str = "") -> Episode:
        """Another cube (``what="object"``, the default) or another pad (``"target"``), drawn from the others."""
        what = what or self.switch_goals[0]
        if what not in self.switch_goals:
            raise SimError(f"PickPlace can switch {list(self.switch_goals)}, not {what!r}.")
        n = self.cfg.num_objects
        if n < 2:
            raise SimError("PickPlace: switching the goal needs num_objects >= 2.")
        key, index_key, prefix = (
            ("object", "object_index", "object_") if what == "object" else ("target", "target_index", "pad_")
        )
        new = (int(episode.goal[index_key]) + 1 + int(rng.integers(n - 1))) % n
        goal = {**episode.goal, key: f"{prefix}{new}", index_key: new}
        text = self.rephrase(episode, self.slots(episode, episode.goal), self.slots(episode, goal), rng)
        return Episode(episode.layout, text, goal)

    def evaluate(self, world: World, episode: Episode) -> dict[str, Any]:
        name = episode.goal["object"]
        pos, _ = world.object_pose(name)
        pad = episode.layout.markers[episode.goal["target"]].pos
        error = float(np.linalg.norm(pos[:2] - pad[:2]))
        resting = pos[2] <= self.objects[episode.goal["object_index"]].half_height + 0.01
        success = error <= self.cfg.place_tolerance and resting and not world.touching(name, GRIPPER)
        start = episode.layout.objects[name].pos
        progress = pick_and_place(
            world,
            name,
            start,
            self.objects[episode.goal["object_index"]].half_height,
            pad[:2],
            pad[:2],
            self.cfg.place_tolerance,
            success,
        )
        return {"is_success": bool(success), "goal_error": error, "progress": progress}

    def feature_names(self) -> list[str]:
        n = self.cfg.num_objects
        return (
            [f"object_{i}.{a}" for i in range(n) for a in "xyz"]
            + [f"pad_{i}.{a}" for i in range(n) for a in "xy"]
            + [f"goal_is_object_{i}" for i in range(n)]
            + [f"goal_is_pad_{i}" for i in range(n)]
            + [f"goal_object.{a}" for a in "xyz"]
            + ["goal_pad.x", "goal_pad.y"]
        )

    def features(self, world: World, episode: Episode) -> np.ndarray:
        n = self.cfg.num_objects
        objs = [world.object_pose(f"object_{i}")[0] for i in range(n)]
        pads = [episode.layout.markers[f"pad_{i}"].pos[:2] for i in range(n)]
        # The goal also as positions (robosuite-style object-centric state): which cube and pad the one-hots
        # name, resolved, so a policy need not learn to gate positions by one-hots (it learned nothing from
        # one-hots alone in 4k steps: bench/learn). Conditioned experiments hide all ``goal_*`` columns.
        return np.concatenate(
            [
                *objs,
                *pads,
                np.eye(n)[episode.goal["object_index"]],
                np.eye(n)[episode.goal["target_index"]],
                objs[episode.goal["object_index"]],
                pads[episode.goal["target_index"]],
            ]
        )
