"""A tabletop task, independent of the simulator: its scene, how episodes are drawn, its instruction and success.

Each task is a small class with a typed config dataclass (its own keyword arguments to ``make_env``). The split
(:mod:`ember.sims.splits`) and the randomization (:mod:`ember.sims.randomization`) are passed in, so a task never tests a
split's name: it reads what the split changes (palette, shape, goal set, scene).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from ember.sims.cameras import jittered
from ember.sims.errors import SimError
from ember.sims.randomization import Randomization, sample_lighting
from ember.sims.splits import COLORS, SplitSpec
from ember.sims.tabletop.sampling import sample_xy
from ember.sims.tabletop.scene import CAMERAS, CUBE_HALF, Layout, ObjectSpec, Placement, SceneSpec
from ember.sims.tabletop.world import World

DISTRACTOR_COLORS: tuple[tuple[float, float, float, float], ...] = (
    (0.55, 0.55, 0.55, 1.0),
    (0.45, 0.3, 0.18, 1.0),
    (0.95, 0.95, 0.92, 1.0),
)
"""Grey, brown, white: distractors never take a colour an instruction can name."""
DISTRACTOR_MIN_DIST = 0.08
DISTRACTOR_LOW = np.array([0.30, -0.30])
DISTRACTOR_HIGH = np.array([0.70, 0.30])
"""Distractors may sit anywhere on the reachable table, a wider area than the task's objects."""


@dataclass
class Episode:
    """One drawn episode: the initial layout, the instruction and the goal (task-specific keys)."""

    layout: Layout
    instruction: str
    goal: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskConfig:
    """Options every tabletop task accepts (subclasses add their own)."""


class Task(ABC):
    """Base of the tabletop tasks; see the module docstring."""

    name: ClassVar[str]
    config_cls: ClassVar[type[TaskConfig]] = TaskConfig
    max_episode_steps: ClassVar[int] = 100
    templates: ClassVar[tuple[str, ...]]
    """Instruction paraphrases; ``reset`` draws one per episode."""

    def __init__(self, config: TaskConfig, split: SplitSpec, randomization: Randomization) -> None:
        self.cfg = config
        self.split = split
        self.rand = randomization

    @cached_property
    def objects(self) -> tuple[ObjectSpec, ...]:
        """:meth:`task_objects`, built once (success tests read them every step)."""
        return self.task_objects()

    # ------------------------------------------------------------------ what subclasses define
    @abstractmethod
    def task_objects(self) -> tuple[ObjectSpec, ...]:
        """The task's own free objects (distractors are added by :meth:`scene`)."""

    def markers(self) -> tuple[Any, ...]:
        return ()

    def drawer(self) -> Any:
        return None

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Episode:
        """Draw an episode: call :meth:`base_layout`, place the task's things, choose goal and instruction."""

    @abstractmethod
    def evaluate(self, world: World, episode: Episode) -> dict[str, Any]:
        """``is_success``, ``progress`` (:mod:`ember.sims.tabletop.progress`: in [0, 1], 1.0 exactly at success, defined by
        the task's stages in its docstring) and task metrics (``goal_error``, ...) for the world's current state."""

    @abstractmethod
    def feature_names(self) -> list[str]:
        """Names of the task part of ``observation.environment_state``."""

    @abstractmethod
    def features(self, world: World, episode: Episode) -> np.ndarray:
        """The task part of ``observation.environment_state`` (privileged object state and the goal)."""

    # ------------------------------------------------------------------ shared machinery
    def distractors(self) -> tuple[ObjectSpec, ...]:
        """The split's distractor objects (spheres and tall boxes no instruction names)."""
        return tuple(
            ObjectSpec(
                f"distractor_{i}",
                "sphere" if i % 2 == 0 else "box",
                (0.022,) if i % 2 == 0 else (0.018, 0.018, 0.03),
                mass=0.05,
            )
            for i in range(self.split.distractors)
        )

    def scene(self) -> SceneSpec:
        return SceneSpec(
            objects=self.objects + self.distractors(),
            markers=self.markers(),
            drawer=self.drawer(),
            table_texture=self.split.table_texture,
        )

    def object_spec(self, name: str) -> ObjectSpec:
        """A graspable object in the split's shape."""
        if self.split.shape == "cylinder":
            return ObjectSpec(name, "cylinder", (CUBE_HALF, CUBE_HALF))
        return ObjectSpec(name, "box", (CUBE_HALF, CUBE_HALF, CUBE_HALF))

    @property
    def noun(self) -> str:
        return "cylinder" if self.split.shape == "cylinder" else "cube"

    def colors(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` distinct palette colours, shuffled unless colour randomization is off."""
        palette = list(self.split.palette)
        if self.rand.colors:
            return [palette[i] for i in rng.permutation(len(palette))[:n]]
        return palette[:n]

    def base_layout(self, rng: np.random.Generator) -> Layout:
        """Lighting and cameras of the episode (the split's preset, jittered as configured)."""
        return Layout(
            lighting=sample_lighting(self.split.lighting, self.rand.lighting, rng),
            cameras={
                n: jittered(c, self.rand.camera_pos, self.rand.camera_rot, rng) for n, c in CAMERAS.items()
            },
        )

    def place_distractors(self, layout: Layout, rng: np.random.Generator, taken: list[np.ndarray]) -> None:
        for i in range(self.split.distractors):
            spec = self.distractors()[i]
            xy = sample_xy(rng, taken, DISTRACTOR_MIN_DIST, DISTRACTOR_LOW, DISTRACTOR_HIGH)
            layout.objects[spec.name] = Placement(
                np.r_[xy, spec.half_height],
                float(rng.uniform(-np.pi, np.pi)),
                DISTRACTOR_COLORS[i % len(DISTRACTOR_COLORS)],
            )

    def instruction(self, rng: np.random.Generator, **slots: Any) -> str:
        return self.templates[int(rng.integers(len(self.templates)))].format(**slots)

    @staticmethod
    def rgba(color: str) -> tuple[float, float, float, float]:
        return COLORS[color]

    @staticmethod
    def color_name(rgba: tuple[float, ...]) -> str:
        """The palette name of a placement's colour (instructions name colours, layouts hold RGBA)."""
        for name, value in COLORS.items():
            if tuple(float(v) for v in value) == tuple(float(v) for v in rgba):
                return name
        raise SimError(f"colour {tuple(rgba)} is not a named colour of sims.splits.COLORS.")

    # ------------------------------------------------------------------ switching the goal mid-episode
    switch_goals: ClassVar[tuple[str, ...]] = ()
    """What :meth:`retarget` can change (the first is the default); empty: the task cannot switch."""

    def retarget(self, episode: Episode, rng: np.random.Generator, what: str = "") -> Episode:
        """SwitchVLA: the running episode with a new goal and the instruction that asks for it (same layout)."""
        raise SimError(
            f"{self.name} cannot switch its goal mid-episode (switch_after); tasks that can: PickPlace."
        )

    def rephrase(
        self, episode: Episode, old_slots: dict[str, Any], new_slots: dict[str, Any], rng: np.random.Generator
    ) -> str:
        """The new goal's instruction in the phrasing the episode used (a user's or held-out template stays)."""
        for template in self.templates:
            if template.format(**old_slots) == episode.instruction:
                return template.format(**new_slots)
        return self.templates[int(rng.integers(len(self.templates)))].format(**new_slots)
