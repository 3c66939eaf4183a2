"""Conditioning inputs produced from one recorded episode, in hindsight (what happened becomes the instruction).

An :class:`EpisodeRecord` is what a recording holds about an episode: the conditioning camera's frames, the
privileged environment state with its names, the camera geometry and the instruction. From it:

* ``goal_image``: the last frame (GRIF / goal-conditioned BC); ``initial_image``: the first;
* ``goal_sketch``: an RT-Sketch drawing of the last frame;
* ``trajectory_sketch``: the end-effector path (``ee.x/y/z`` of the environment state) drawn in the camera;
* ``keypoints``: the goal entities of the first frame (``goal_is_object_2`` -> ``object_2.x/y/z``, one point per
  goal one-hot group, in the order the state names them) projected into the camera, KITE-style.

The same functions serve training (episodes of a dataset) and evaluation (an expert's rollout of the evaluation
seed), so a policy is never shown conditioning made one way and tested on conditioning made another.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ember.conditioning.cameras import CameraModel
from ember.conditioning.errors import ConditioningError
from ember.conditioning.sketch import (
    DEFAULT_AUGMENTATION,
    NO_AUGMENTATION,
    StrokeAugmentation,
    goal_sketch,
    trajectory_sketch,
)
from ember.policies.conditioning.keys import (
    GOAL_IMAGE,
    GOAL_SKETCH,
    INITIAL_IMAGE,
    KEYPOINTS,
    LANGUAGE,
    TRAJECTORY_SKETCH,
)

EE_NAMES = ("ee.x", "ee.y", "ee.z")
GRIPPER_NAME = "gripper_closure"
_GOAL_ONE_HOT = re.compile(r"^(goal_(?:[a-z]+_)?is_)(([a-z]+)_\d+)$")


@dataclass
class EpisodeRecord:
    """What conditioning is made from; ``frames`` are the conditioning camera's (T, H, W, 3) uint8 images."""

    frames: np.ndarray | None = None
    env_state: np.ndarray | None = None
    env_state_names: Sequence[str] = field(default_factory=list)
    camera: CameraModel | None = None
    task: str = ""

    def column(self, name: str) -> np.ndarray:
        names = list(self.env_state_names)
        if self.env_state is None or name not in names:
            raise ConditioningError(
                f"the environment state has no {name!r} (it has {names}); this conditioning needs it"
            )
        return np.asarray(self.env_state)[:, names.index(name)]

    @property
    def image_size(self) -> tuple[int, int]:
        if self.frames is not None:
            return int(self.frames.shape[1]), int(self.frames.shape[2])
        if self.camera is not None:
            return self.camera.height, self.camera.width
        raise ConditioningError("no frames and no camera: cannot tell the conditioning image size")

    def require_camera(self, kind: str) -> CameraModel:
        if self.camera is None:
            raise ConditioningError(
                f"{kind} needs the camera's intrinsics and extrinsics (sims report them in info['cameras']); "
                "none were given for this episode"
            )
        h, w = self.image_size
        return self.camera if (self.camera.height, self.camera.width) == (h, w) else self.camera.resized(w, h)


def ee_path(record: EpisodeRecord) -> np.ndarray:
    """(T, 3) end-effector positions (world frame) from the ``ee.x/y/z`` state columns."""
    return np.stack([record.column(n) for n in EE_NAMES], axis=-1)


def goal_entities(names: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Goal one-hot groups of the state names, in order: ``[("goal_is_", ["object_0", ...]), ("goal_is_",
    ["pad_0", ...])]`` (a group is one prefix and one entity kind)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in names:
        match = _GOAL_ONE_HOT.match(name)
        if match:
            groups.setdefault((match.group(1), match.group(3)), []).append(match.group(2))
    return [(prefix, entities) for (prefix, _), entities in groups.items()]


def goal_points(record: EpisodeRecord, frame: int = 0) -> np.ndarray:
    """(K, 3) world positions of the goal entities at ``frame`` (z = 0 for table markers without a z)."""
    names = list(record.env_state_names)
    groups = goal_entities(names)
    if not groups:
        raise ConditioningError(
            f"no goal one-hots (goal_is_<entity>_<i>) among the state names {names}; keypoints need them"
        )
    state = np.asarray(record.env_state)[frame]
    points = []
    for prefix, entities in groups:
        hot = [state[names.index(prefix + e)] for e in entities]
        entity = entities[int(np.argmax(hot))]
        xyz = [state[names.index(f"{entity}.{a}")] if f"{entity}.{a}" in names else 0.0 for a in "xyz"]
        points.append(xyz)
    return np.asarray(points, dtype=np.float64)


def produce(
    record: EpisodeRecord,
    kinds: Sequence[str],
    rng: np.random.Generator | None = None,
    augment: StrokeAugmentation = DEFAULT_AUGMENTATION,
    num_keypoints: int | None = None,
    edge_threshold: float = 0.18,
    sketch_source: str = "rgb",
) -> dict[str, np.ndarray]:
    """``{kind: array}`` for each non-language kind: images (H, W, C) uint8, keypoints (K, 2) float32 in [0, 1].

    ``rng`` turns on the stroke augmentation of sketches (training); without it sketches are drawn plainly.
    ``sketch_source``: goal-sketch edges of the colour image (``rgb``) or of coloured objects only (``chroma``).
    """
    out: dict[str, np.ndarray] = {}
    aug = augment if rng is not None else NO_AUGMENTATION
    for kind in kinds:
        if kind == LANGUAGE:
            continue
        if kind in (GOAL_IMAGE, GOAL_SKETCH, INITIAL_IMAGE) and record.frames is None:
            raise ConditioningError(
                f"{kind} is made from the episode's camera frames; the record has no frames"
            )
        if kind == GOAL_IMAGE:
            out[kind] = np.ascontiguousarray(record.frames[-1, ..., :3], dtype=np.uint8)
        elif kind == INITIAL_IMAGE:
            out[kind] = np.ascontiguousarray(record.frames[0, ..., :3], dtype=np.uint8)
        elif kind == GOAL_SKETCH:
            out[kind] = goal_sketch(record.frames[-1], rng, aug, edge_threshold, sketch_source)
        elif kind == TRAJECTORY_SKETCH:
            camera = record.require_camera(kind)
            uv = camera.project(ee_path(record))
            grip = record.column(GRIPPER_NAME) if GRIPPER_NAME in record.env_state_names else None
            out[kind] = trajectory_sketch(uv, record.image_size, grip, rng, aug)
        elif kind == KEYPOINTS:
            camera = record.require_camera(kind)
            uv = camera.project(goal_points(record))
            h, w = record.image_size
            points = (uv / np.array([w, h])).astype(np.float32)
            if not np.all(np.isfinite(points)):
                raise ConditioningError(
                    "a goal entity is behind the camera; choose another conditioning camera"
                )
            if num_keypoints is not None and len(points) != num_keypoints:
                raise ConditioningError(
                    f"the episode has {len(points)} goal entities but the policy expects num_keypoints="
                    f"{num_keypoints}; set --policy.conditioning.num_keypoints={len(points)}"
                )
            out[kind] = points
        else:
            raise ConditioningError(f"unknown conditioning kind {kind!r}")
    return out
