"""RT-H language motions: a small vocabulary of "move left" / "close the gripper" phrases derived from demonstrations.

Why (RT-H, Belkhale et al. 2024): between the task ("put the red cube on the blue pad") and the action sits a
coarse, *language* description of what the arm does next ("move forward and down"). Predicting it first makes
the action head's job easier, shares structure across tasks, and gives an operator a handle: replace the
predicted motion and the actions follow it. The labels come for free from the demonstrations' end-effector
motion; nobody annotates them.

Labeling rule, per frame ``t`` of an episode with end-effector positions ``p`` (metres, robot base frame) and
gripper closure ``g`` in [0, 1] (0 open, 1 closed), over a window of ``w = max(1, round(window_s * fps))`` frames
(clipped at the episode's end)::

    dg = g[t + w] - g[t]
    if |dg| >= gripper_threshold:                 "close the gripper" (dg > 0) / "open the gripper"
    else:
        d = p[t + w] - p[t];  m = max_i |d_i|
        axes = {i : |d_i| >= dead_zone_m  and  |d_i| >= secondary_ratio * m}   (at most max_axes, largest first)
        if not axes:                              "stay"
        else:                                     "move " + words of axes in x, y, z order, joined with "and"

with the axis words of :class:`MotionConfig` (base frame: x away from the robot = "forward", y to its left =
"left", z up = "up"), e.g. ``d = (0.03, 0.004, -0.02)``, dead zone 0.01 -> "move forward and down".

The vocabulary is the full, canonical enumeration of what the rule can emit (``stay``, the two gripper events,
then every combination of up to ``max_axes`` axes), so indices are stable across datasets and episodes.

This module is the rule and its vocabulary. The rest of RT-H's motions:

- :mod:`ember.vla.motion_labels`: labeling a dataset (``label_motions``, ``ember motions``) and reading a labeled
  episode back (``dataset_motions``). The motions become the dataset's persistent ``motion`` language rows
  (LeRobot's ``language_persistent`` column, role ``assistant``, one row each time the motion changes, see
  :mod:`ember.data.language`), and the vocabulary with the config that produced it goes to ``meta/motions.json``
  (:mod:`ember.data.motions`); ``WindowDataset(motion=True)`` serves each frame's ``motion`` text and
  ``motion.index``.
- :mod:`ember.vla.motion_ee`: where the end effector comes from: ``ee.x/ee.y/ee.z`` entries of
  ``observation.environment_state`` or ``observation.state`` (ember's privileged sim datasets record them), else
  forward kinematics of the joint state through the robot's MuJoCo model (``ember.robots.robot_mjspec``): what a
  real arm's joints-only dataset needs.
- :mod:`ember.vla.motion_overrides`: an operator's replacements of the predicted motion, logged and written as
  correction rows.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ember.data.errors import DatasetError
from ember.data.motions import check_motions, read_motions

STAY = "stay"
CLOSE_GRIPPER = "close the gripper"
OPEN_GRIPPER = "open the gripper"


@dataclass
class MotionConfig:
    """How motions are derived from end-effector paths."""

    window_s: float = 0.3
    """Look-ahead: the motion at ``t`` describes the displacement from ``t`` to ``t + window_s``."""
    dead_zone_m: float = 0.01
    """An axis moving less than this over the window does not count (metres)."""
    secondary_ratio: float = 0.5
    """A second/third axis is named only if it moves at least this fraction of the dominant one."""
    max_axes: int = 2
    """At most this many axes in one motion ("move forward and down"); 1..3."""
    gripper_threshold: float = 0.15
    """A change of gripper closure (0 open .. 1 closed) of at least this over the window is a gripper event."""
    axis_words: tuple[tuple[str, str], ...] = (("forward", "back"), ("left", "right"), ("up", "down"))
    """(positive, negative) words per axis of the robot base frame: x away from the robot, y to its left, z up."""
    source: str = "auto"
    """Where end-effector positions come from: ``auto`` (ee.* columns if recorded, else forward kinematics),
    ``columns`` (only recorded ee.* entries) or ``fk`` (always forward kinematics of observation.state)."""

    def validate(self) -> None:
        if not self.window_s > 0:
            raise DatasetError(f"motion window_s must be > 0 seconds, got {self.window_s}.")
        if not self.dead_zone_m >= 0:
            raise DatasetError(f"motion dead_zone_m must be >= 0 metres, got {self.dead_zone_m}.")
        if not 0 < self.secondary_ratio <= 1:
            raise DatasetError(f"motion secondary_ratio must be in (0, 1], got {self.secondary_ratio}.")
        if len(self.axis_words) != 3 or any(len(w) != 2 for w in self.axis_words):
            raise DatasetError(
                f"axis_words needs 3 (positive, negative) pairs for x, y, z, got {self.axis_words}."
            )
        if not 1 <= int(self.max_axes) <= 3:
            raise DatasetError(f"motion max_axes must be 1, 2 or 3, got {self.max_axes}.")
        if not 0 < self.gripper_threshold <= 1:
            raise DatasetError(f"gripper_threshold must be in (0, 1], got {self.gripper_threshold}.")
        if self.source not in ("auto", "columns", "fk"):
            raise DatasetError(f"motion source must be 'auto', 'columns' or 'fk', got {self.source!r}.")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["axis_words"] = [list(w) for w in self.axis_words]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MotionConfig:
        d = dict(d)
        if "axis_words" in d:
            d["axis_words"] = tuple(tuple(w) for w in d["axis_words"])
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise DatasetError(f"unknown MotionConfig field(s) {sorted(unknown)}.")
        return cls(**d)


def _phrase(words: Sequence[str]) -> str:
    if len(words) == 1:
        return f"move {words[0]}"
    return "move " + ", ".join(words[:-1]) + " and " + words[-1]


@dataclass(frozen=True)
class MotionVocabulary:
    """The ordered motion phrases; a motion's index is what a classifier head predicts."""

    motions: tuple[str, ...]

    def __post_init__(self) -> None:
        check_motions(list(self.motions), "MotionVocabulary")
        object.__setattr__(self, "_index", {m: i for i, m in enumerate(self.motions)})

    def __len__(self) -> int:
        return len(self.motions)

    def __iter__(self):
        return iter(self.motions)

    def __contains__(self, motion: object) -> bool:
        return motion in self._index  # type: ignore[attr-defined]

    def index(self, motion: str) -> int:
        try:
            return self._index[motion]  # type: ignore[attr-defined]
        except KeyError:
            raise DatasetError(
                f"{motion!r} is not a motion of this vocabulary; motions: {list(self.motions)}."
            ) from None

    def motion(self, index: int) -> str:
        if not 0 <= int(index) < len(self.motions):
            raise DatasetError(f"motion index {index} is outside 0..{len(self.motions) - 1}.")
        return self.motions[int(index)]

    def to_json(self) -> str:
        return json.dumps({"motions": list(self.motions)})

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> MotionVocabulary:
        d = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(tuple(check_motions(d.get("motions", d.get("vocabulary")), "a motion vocabulary JSON")))

    @classmethod
    def from_config(cls, config: MotionConfig | None = None) -> MotionVocabulary:
        """Every phrase :func:`derive_motions` can emit under ``config``, in a fixed order."""
        config = config or MotionConfig()
        config.validate()
        out = [STAY, CLOSE_GRIPPER, OPEN_GRIPPER]
        for k in range(1, int(config.max_axes) + 1):
            for axes in itertools.combinations(range(3), k):
                for signs in itertools.product((0, 1), repeat=k):
                    out.append(_phrase([config.axis_words[a][s] for a, s in zip(axes, signs, strict=True)]))
        return cls(tuple(out))

    @classmethod
    def from_dataset(cls, root: str | Path) -> MotionVocabulary:
        """The vocabulary ``label_motions`` stored in ``<root>/meta/motions.json``."""
        return cls(tuple(read_motions(root)["motions"]))


def derive_motions(
    ee_positions: np.ndarray, gripper: np.ndarray | None, fps: float, config: MotionConfig | None = None
) -> list[str]:
    """One motion phrase per frame of one episode (see the module docstring for the rule)."""
    config = config or MotionConfig()
    config.validate()
    p = np.asarray(ee_positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise DatasetError(f"ee_positions must be (T, 3) metres, got shape {p.shape}.")
    n = len(p)
    g = np.zeros(n) if gripper is None else np.asarray(gripper, dtype=np.float64).reshape(-1)
    if len(g) != n:
        raise DatasetError(f"gripper has {len(g)} values but ee_positions has {n} frames.")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise DatasetError("ee_positions/gripper hold NaN or inf; motions cannot be derived.")
    if fps <= 0:
        raise DatasetError(f"fps must be > 0, got {fps}.")
    w = max(1, int(round(config.window_s * fps)))
    ahead = np.minimum(np.arange(n) + w, n - 1)
    disp = p[ahead] - p
    dg = g[ahead] - g
    out: list[str] = []
    for t in range(n):
        if abs(dg[t]) >= config.gripper_threshold - 1e-9:
            out.append(CLOSE_GRIPPER if dg[t] > 0 else OPEN_GRIPPER)
            continue
        mag = np.abs(disp[t])
        top = float(mag.max())
        keep = [
            i
            for i in np.argsort(-mag, kind="stable")
            if mag[i] >= config.dead_zone_m - 1e-9 and mag[i] >= config.secondary_ratio * top - 1e-9
        ][: int(config.max_axes)]
        if not keep:
            out.append(STAY)
            continue
        out.append(_phrase([config.axis_words[i][0 if disp[t, i] > 0 else 1] for i in sorted(keep)]))
    return out


__all__ = [
    "CLOSE_GRIPPER",
    "OPEN_GRIPPER",
    "STAY",
    "MotionConfig",
    "MotionVocabulary",
    "derive_motions",
]
