"""Evaluation splits: what a split changes about a task, selected by name (``split="heldout_object"``).

Why splits and not just seeds: ARNOLD and VLABench show that policies that look solved on their training
distribution fail on novel goal values, objects and scenes. Each split therefore changes one axis only, so a drop in
success names its cause:

* ``train``: the training distribution (demonstrations are collected here).
* ``heldout_goal``: goal values never drawn in ``train`` (continuous goals from held-out bins, goal locations from
  held-out workspace cells, colour pairings never asked for); objects and scene as in ``train``.
* ``heldout_object``: unseen object colours (a disjoint palette) and shapes (cylinders for cubes); goals and scene as
  in ``train``.
* ``heldout_scene``: unseen table texture, lighting and distractor objects; goals and objects as in ``train``.
  Envs take ``heldout_scene_factors`` (a subset of :data:`SCENE_FACTORS`) to apply only some of these changes, so
  a drop on ``heldout_scene`` can be traced to one of them (same seeds, the others as in ``train``).

A split also salts the episode seed, so episode ``s`` of two splits never shares its initial state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ember.sims.errors import SimError

SPLITS: tuple[str, ...] = ("train", "heldout_goal", "heldout_object", "heldout_scene")
SPLIT_SALT = 1_000_003
"""Seed offset per split index (a prime far above any episode count)."""

TRAIN_PALETTE: tuple[str, ...] = ("red", "green", "blue", "yellow")
HELDOUT_PALETTE: tuple[str, ...] = ("orange", "purple", "cyan", "pink")
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.15, 0.15, 1.0),
    "green": (0.2, 0.7, 0.25, 1.0),
    "blue": (0.15, 0.3, 0.85, 1.0),
    "yellow": (0.92, 0.82, 0.15, 1.0),
    "orange": (0.95, 0.5, 0.1, 1.0),
    "purple": (0.55, 0.2, 0.75, 1.0),
    "cyan": (0.1, 0.8, 0.85, 1.0),
    "pink": (0.95, 0.45, 0.7, 1.0),
}
"""RGBA of every colour a task may name; the two palettes are far apart in hue so names stay unambiguous."""


@dataclass(frozen=True)
class SplitSpec:
    """What one split changes; tasks read these fields instead of testing the split's name."""

    name: str
    palette: tuple[str, ...] = TRAIN_PALETTE
    """Object colours drawn from."""
    shape: str = "cube"
    """Shape of graspable objects: 'cube' or 'cylinder'."""
    heldout_goals: bool = False
    """Draw goals from the held-out goal set of the task."""
    table_texture: str = "plain"
    """'plain' (train) or 'checker' (unseen)."""
    lighting: str = "default"
    """'default' or 'dim_side' (an unseen, dimmer light from the side)."""
    distractors: int = 0
    """Extra objects on the table that no instruction names."""


_SPECS = {
    "train": SplitSpec("train"),
    "heldout_goal": SplitSpec("heldout_goal", heldout_goals=True),
    "heldout_object": SplitSpec("heldout_object", palette=HELDOUT_PALETTE, shape="cylinder"),
    "heldout_scene": SplitSpec("heldout_scene", table_texture="checker", lighting="dim_side", distractors=3),
}


SCENE_FACTORS: tuple[str, ...] = ("table_texture", "lighting", "distractors")
"""The :class:`SplitSpec` fields ``heldout_scene`` changes; ``heldout_scene_factors`` names a subset of them."""


def check_split(split: str, where: str = "sims") -> str:
    """``split`` if it is a known split name, else a :class:`SimError` listing the valid ones."""
    if split not in _SPECS:
        raise SimError(f"{where}: unknown split '{split}'; valid splits: {', '.join(SPLITS)}.")
    return split


def split_spec(
    split: str, heldout_scene_factors: Sequence[str] | None = None, where: str = "sims"
) -> SplitSpec:
    """What ``split`` changes. ``heldout_scene_factors`` (``heldout_scene`` only; None = all of them): apply only
    these of :data:`SCENE_FACTORS`, the others as in ``train``; e.g. ``("table_texture",)`` is the checkered
    table under the training light without distractors."""
    spec = _SPECS[check_split(split, where)]
    if heldout_scene_factors is None:
        return spec
    if isinstance(heldout_scene_factors, str):
        raise SimError(
            f"{where}: heldout_scene_factors must be a sequence of names, e.g. "
            f"('{heldout_scene_factors}',), not a string."
        )
    unknown = [f for f in heldout_scene_factors if f not in SCENE_FACTORS]
    if unknown:
        raise SimError(
            f"{where}: unknown heldout_scene_factors {unknown}; valid: {', '.join(SCENE_FACTORS)}."
        )
    if split != "heldout_scene":
        raise SimError(
            f"{where}: heldout_scene_factors only applies to split='heldout_scene', not '{split}'."
        )
    train = _SPECS["train"]
    return dataclasses.replace(
        spec, **{f: getattr(train, f) for f in SCENE_FACTORS if f not in heldout_scene_factors}
    )


def salted_seed(seed: int | None, split: str) -> int | None:
    """The seed a split's episode ``seed`` really uses (``train`` keeps it unchanged)."""
    return None if seed is None else int(seed) + SPLIT_SALT * SPLITS.index(check_split(split))
