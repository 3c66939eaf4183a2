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

Storage: the motions become the dataset's persistent ``motion`` language rows (LeRobot's ``language_persistent``
column, role ``assistant``, one row each time the motion changes, see :mod:`ember.data.language`), and the
vocabulary with the config that produced it goes to ``meta/motions.json``; ``WindowDataset(motion=True)`` serves
each frame's ``motion`` text and ``motion.index``.

Where the end-effector comes from (:func:`episode_ee`): ``ee.x/ee.y/ee.z`` entries of
``observation.environment_state`` or ``observation.state`` (ember's privileged sim datasets record them), else
forward kinematics of the joint state through the robot's MuJoCo model (``ember.robots.robot_mjspec``): what a real arm's
joints-only dataset needs.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ember.data import columns, layout, meta
from ember.data.atomic import write_json_atomic
from ember.data.errors import DatasetError
from ember.data.features import DEFAULT_FEATURES
from ember.data.language import (
    LANGUAGE_COLUMNS,
    LANGUAGE_EVENTS,
    LANGUAGE_PERSISTENT,
    LanguageRow,
    as_row,
    correction,
    language_feature,
)
from ember.data.language import motion as motion_row

MOTIONS_PATH = "meta/motions.json"
"""Vocabulary + config of the dataset's ``motion`` rows (read by :class:`MotionVocabulary` and the window loader)."""
MOTION_STYLE = "motion"
STAY = "stay"
CLOSE_GRIPPER = "close the gripper"
OPEN_GRIPPER = "open the gripper"
EE_NAMES = ("ee.x", "ee.y", "ee.z")
GRIPPER_NAME = "gripper_closure"


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
        if not self.motions:
            raise DatasetError("a motion vocabulary needs at least one motion.")
        dup = [m for m, n in Counter(self.motions).items() if n > 1]
        if dup:
            raise DatasetError(f"duplicate motions in the vocabulary: {dup}.")
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
        motions = d.get("motions", d.get("vocabulary"))
        if not isinstance(motions, list) or not all(isinstance(m, str) for m in motions):
            raise DatasetError(f"a motion vocabulary JSON needs 'motions': a list of strings, got {d!r}.")
        return cls(tuple(motions))

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
        """The vocabulary :func:`label_motions` stored in ``<root>/meta/motions.json``."""
        path = Path(root) / MOTIONS_PATH
        if not path.is_file():
            raise DatasetError(
                f"{path} is missing: label the dataset first (`ember motions --dataset={root}`)."
            )
        return cls.from_json(path.read_text())


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


# ---------------------------------------------------------------------- where the end effector comes from
def _names(ft: Mapping[str, Any]) -> list[str]:
    names = ft.get("names")
    if isinstance(names, Mapping):  # LeRobot's {"motors": [...]} form
        names = next(iter(names.values()), None)
    return [str(n) for n in names] if isinstance(names, list) else []


def ee_source(features: Mapping[str, Any], config: MotionConfig) -> tuple[str, str]:
    """``(kind, key)``: ``("columns", feature)`` when a feature records ``ee.x/ee.y/ee.z``, else ``("fk",
    "observation.state")``; an error saying what is missing when neither is possible."""
    if config.source in ("auto", "columns"):
        for key in ("observation.environment_state", "observation.state"):
            if key in features and all(n in _names(features[key]) for n in EE_NAMES):
                return "columns", key
        if config.source == "columns":
            raise DatasetError(
                "no feature records the end effector (ee.x, ee.y, ee.z in observation.environment_state "
                "or observation.state); use source='fk' to compute it from the joints."
            )
    if "observation.state" not in features:
        raise DatasetError(
            "the dataset has no observation.state, so neither recorded nor FK end-effector positions."
        )
    return "fk", "observation.state"


class JointFK:
    """Forward kinematics of a registered robot: joint state rows -> ``ee_site`` positions and gripper closure.

    Uses the same MuJoCo model the sims build the arm from (base at the origin, the tabletop's base frame), so the
    directions match the recorded ee.* columns of sim datasets.
    """

    def __init__(self, robot_type: str, state_names: Sequence[str]) -> None:
        import mujoco

        from ember.robots import get_robot, robot_mjspec

        if not robot_type:
            raise DatasetError(
                "a joints-only dataset needs info.json 'robot_type' (e.g. 'panda') for forward "
                "kinematics of the end effector."
            )
        self.robot = get_robot(robot_type)
        self.model = robot_mjspec(robot_type).compile()
        self.data = mujoco.MjData(self.model)
        names = list(state_names) or list(self.robot.state_names)
        missing = [j for j in self.robot.joint_names if j not in names]
        if missing:
            raise DatasetError(
                f"observation.state names {names} lack the {robot_type} joints {missing}; FK needs "
                f"every arm joint ({list(self.robot.joint_names)})."
            )
        self.arm_cols = [names.index(j) for j in self.robot.joint_names]
        grip = [j for j in self.robot.gripper_joint_names if j in names]
        self.grip_cols = [names.index(j) for j in grip]
        self.grip_sel = [list(self.robot.gripper_joint_names).index(j) for j in grip]
        self.qpos_adr = [
            int(self.model.jnt_qposadr[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, j)])
            for j in self.robot.joint_names
        ]
        self.site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, self.robot.ee_site)
        self._mujoco = mujoco

    def __call__(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        state = np.asarray(state, dtype=np.float64)
        out = np.empty((len(state), 3))
        for t, row in enumerate(state):
            self.data.qpos[self.qpos_adr] = row[self.arm_cols]
            self._mujoco.mj_kinematics(self.model, self.data)
            out[t] = self.data.site_xpos[self.site]
        grip = None
        if self.grip_cols:
            sel = self.grip_sel
            open_, closed = self.robot.gripper_open[sel], self.robot.gripper_closed[sel]
            span = np.where(np.abs(closed - open_) > 1e-9, closed - open_, 1.0)
            grip = np.clip(np.mean((state[:, self.grip_cols] - open_) / span, axis=1), 0.0, 1.0)
        return out, grip


def episode_ee(
    table: pa.Table, features: Mapping[str, Any], kind: str, key: str, fk: JointFK | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(ee positions (T, 3), gripper closure (T,) or None)`` of one episode's rows."""
    arr = np.asarray(columns.to_numpy(table.column(key), features[key]), dtype=np.float64).reshape(
        table.num_rows, -1
    )
    if kind == "columns":
        names = _names(features[key])
        ee = arr[:, [names.index(n) for n in EE_NAMES]]
        if GRIPPER_NAME in names:
            return ee, arr[:, names.index(GRIPPER_NAME)]
        if fk is not None and fk.grip_cols and "observation.state" in features:
            state = np.asarray(
                columns.to_numpy(table.column("observation.state"), features["observation.state"])
            )
            return ee, fk(state.reshape(table.num_rows, -1))[1]
        return ee, None
    assert fk is not None
    return fk(arr)


# ---------------------------------------------------------------------- writing the motion rows
@dataclass
class MotionSummary:
    """What :func:`label_motions` did."""

    root: str
    source: str
    """``columns:<feature>`` or ``fk:<robot>``."""
    episodes: int
    frames: int
    vocabulary: list[str]
    counts: dict[str, int]
    """Frames per motion (only motions that occur)."""
    rows: int
    """Persistent motion rows written (one per change of motion, per episode)."""
    seconds: float
    written: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def motion_rows(motions: Sequence[str], fps: float) -> list[LanguageRow]:
    """One persistent ``motion`` row each time the motion changes, stamped with its frame's time."""
    return [motion_row(m, t / fps) for t, m in enumerate(motions) if t == 0 or m != motions[t - 1]]


def _merged_persistent(
    existing: Sequence[Mapping[str, Any]] | None, rows: Sequence[LanguageRow]
) -> list[dict]:
    """The episode's persistent rows with every earlier ``motion`` row replaced by ``rows`` (re-runs idempotent)."""
    kept = [as_row(d) for d in existing or [] if d.get("style") != MOTION_STYLE]
    merged = sorted([*kept, *rows], key=lambda r: (float(r.timestamp or 0.0), r.style != "subtask"))
    return [r.to_arrow_dict(True) for r in merged]


def label_motions(dataset_root: str | Path, config: MotionConfig | None = None) -> MotionSummary:
    """Derive every episode's motions and store them as ``motion`` rows of ``language_persistent`` (additive).

    Crash safety, as :func:`ember.data.add_columns`: ``meta/motions.json`` is written first, then each data shard
    is rewritten atomically (other columns copied untouched, other language rows kept), and ``meta/info.json``,
    the commit point, declares the language columns last if the dataset had none. An interrupted run leaves
    readers on the old features; running it again finishes the job (it replaces motion rows, never appends).
    """
    from ember.data.dataset import EmberDataset

    t0 = time.perf_counter()
    config = config or MotionConfig()
    config.validate()
    root = Path(dataset_root)
    ds = EmberDataset(root)
    info = dict(ds.meta.info)
    feats: dict[str, dict] = {k: dict(v) for k, v in info["features"].items()}
    kind, key = ee_source(feats, config)
    fk = None
    if kind == "fk" or GRIPPER_NAME not in _names(feats[key]):
        try:
            fk = JointFK(str(info.get("robot_type") or ""), _names(feats.get("observation.state", {})))
        except DatasetError:
            if kind == "fk":
                raise
    vocab = MotionVocabulary.from_config(config)
    fps = float(ds.fps)
    write_json_atomic(
        root / MOTIONS_PATH,
        {
            "motions": list(vocab.motions),
            "config": config.to_dict(),
            "source": f"{kind}:{key if kind == 'columns' else info.get('robot_type')}",
        },
    )
    written = [f"wrote {root / MOTIONS_PATH}"]

    merged = dict(feats)
    if not all(k in feats for k in LANGUAGE_COLUMNS):
        head = {k: v for k, v in feats.items() if k not in DEFAULT_FEATURES}
        head.update({k: language_feature() for k in LANGUAGE_COLUMNS if k not in head})
        merged = {**head, **{k: v for k, v in feats.items() if k in DEFAULT_FEATURES}}
    schema = columns.schema_for(merged)
    total = ds.num_frames
    counts: Counter[str] = Counter()
    n_rows = 0
    rows = ds.meta.episodes.to_pydict()
    shards = sorted({(c, f) for c, f in zip(rows["data/chunk_index"], rows["data/file_index"], strict=True)})
    for chunk, file in shards:
        path = layout.data_file(root, chunk, file)
        table = pq.read_table(path, page_checksum_verification=True)
        index = table.column("index").to_numpy()
        if len(index) and index.max() >= total:
            raise DatasetError(
                f"{path} holds rows of an uncommitted episode (index >= {total}); run "
                f"`ember data repair {root}` first."
            )
        ep = table.column("episode_index").to_numpy()
        starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if len(ep) else np.zeros(0, np.int64)
        parts = []
        for s, e in zip(starts, [*starts[1:], len(ep)], strict=True):
            part = table.slice(s, e - s)
            ee, grip = episode_ee(part, feats, kind, key, fk)
            motions = derive_motions(ee, grip, fps, config)
            counts.update(motions)
            new_rows = motion_rows(motions, fps)
            n_rows += len(new_rows)
            old = (
                part.column(LANGUAGE_PERSISTENT).to_pylist()[0]
                if LANGUAGE_PERSISTENT in part.column_names
                else []
            )
            persistent = _merged_persistent(old, new_rows)
            arrays = []
            for fld in schema:
                if fld.name == LANGUAGE_PERSISTENT:
                    arrays.append(
                        columns.language_to_arrow(LANGUAGE_PERSISTENT, [persistent] * part.num_rows)
                    )
                elif fld.name == LANGUAGE_EVENTS and LANGUAGE_EVENTS not in part.column_names:
                    arrays.append(
                        columns.language_to_arrow(LANGUAGE_EVENTS, [[] for _ in range(part.num_rows)])
                    )
                else:
                    arrays.append(part.column(fld.name).combine_chunks().cast(fld.type))
            parts.append(pa.Table.from_arrays(arrays, schema=schema))
        meta.write_parquet_row_groups(path, parts)
        written.append(f"rewrote {path}")
    if merged != feats:
        info["features"] = merged
        meta.write_info(root, info)  # commit point
        written.append(f"declared {list(LANGUAGE_COLUMNS)} in {root / layout.INFO_PATH}")
    return MotionSummary(
        root=str(root),
        source=f"{kind}:{key if kind == 'columns' else info.get('robot_type')}",
        episodes=ds.num_episodes,
        frames=total,
        vocabulary=list(vocab.motions),
        counts={m: counts[m] for m in vocab.motions if counts[m]},
        rows=n_rows,
        seconds=time.perf_counter() - t0,
        written=written,
    )


def dataset_motions(root: str | Path, episode: int) -> list[str]:
    """Per-frame motion text of one labeled episode (read back from its ``motion`` rows)."""
    from ember.data.dataset import EmberDataset

    ds = EmberDataset(root)
    lang = ds.language(episode)
    n = ds.episode_length(episode)
    out = []
    for t in range(n):
        row = lang.active_at(t / ds.fps, MOTION_STYLE)
        if row is None:
            raise DatasetError(
                f"episode {episode} of {root} has no motion rows; run `ember motions --dataset={root}`."
            )
        out.append(row.content or "")
    return out


# ---------------------------------------------------------------------- operator overrides
@dataclass(frozen=True)
class MotionOverride:
    """An operator (or a scripted test) replaced the predicted motion at ``time`` (seconds from episode start)."""

    time: float
    predicted: str
    replaced_by: str
    source: str = "argument"
    """``argument`` (select_action's override), ``topic`` (the ROS correction topic), ``script``..."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MotionOverrideLog:
    """Overrides of one episode, in order: kept in a rollout's policy outputs and written as correction rows.

    A correction row is the operator's own words (the replacing motion) as an ``interjection`` event, the
    same row ``ember correct`` -> recorder gives a typed correction, so one dataset holds both; what the policy
    had predicted travels in the row's ``tool_calls`` (``override_motion``) for learning from interventions.
    """

    def __init__(self) -> None:
        self.entries: list[MotionOverride] = []

    def __len__(self) -> int:
        return len(self.entries)

    def record(
        self, time_s: float, predicted: str, replaced_by: str, source: str = "argument"
    ) -> MotionOverride:
        entry = MotionOverride(float(time_s), str(predicted), str(replaced_by), str(source))
        self.entries.append(entry)
        return entry

    def apply(self, time_s: float, predicted: str, override: str | None, source: str = "argument") -> str:
        """The motion to condition on: ``override`` when given (logged if it differs), else ``predicted``."""
        if override is None or override == "":
            return predicted
        if override != predicted:
            self.record(time_s, predicted, override, source)
        return override

    def to_rows(self) -> list[LanguageRow]:
        """``interjection`` events (``ember.data.correction``) at each override's time, for ``add_language``."""
        out = []
        for e in self.entries:
            base = correction(e.replaced_by, e.time)
            call = {
                "type": "function",
                "function": {
                    "name": "override_motion",
                    "arguments": json.dumps(
                        {"predicted": e.predicted, "replaced_by": e.replaced_by, "source": e.source}
                    ),
                },
            }
            out.append(LanguageRow(base.role, base.content, base.style, base.timestamp, None, (call,)))
        return out

    def to_json(self) -> str:
        return json.dumps([e.to_dict() for e in self.entries])

    @classmethod
    def from_json(cls, text: str) -> MotionOverrideLog:
        log = cls()
        for d in json.loads(text):
            log.record(d["time"], d["predicted"], d["replaced_by"], d.get("source", "argument"))
        return log


__all__ = [
    "CLOSE_GRIPPER",
    "MOTIONS_PATH",
    "OPEN_GRIPPER",
    "STAY",
    "JointFK",
    "MotionConfig",
    "MotionOverride",
    "MotionOverrideLog",
    "MotionSummary",
    "MotionVocabulary",
    "dataset_motions",
    "derive_motions",
    "label_motions",
    "motion_rows",
]
