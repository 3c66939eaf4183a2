"""Labeling a dataset's RT-H language motions (``ember motions``), and reading a labeled episode's motions back.

:func:`label_motions` derives each episode's motions (:func:`ember.vla.motions.derive_motions`, from the end
effector of :mod:`ember.vla.motion_ee`) and stores them as the dataset's persistent ``motion`` language rows
(LeRobot's ``language_persistent`` column, role ``assistant``, one row each time the motion changes, see
:mod:`ember.data.language`); the vocabulary with the config that produced it goes to ``meta/motions.json``
(:mod:`ember.data.motions`). ``WindowDataset(motion=True)`` then serves each frame's ``motion`` text and
``motion.index``; :func:`dataset_motions` reads one episode's per-frame motions back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ember.data import columns, layout, meta
from ember.data.errors import DatasetError
from ember.data.features import DEFAULT_FEATURES
from ember.data.labels import rewrite_data_shards
from ember.data.language import (
    LANGUAGE_COLUMNS,
    LANGUAGE_EVENTS,
    LANGUAGE_PERSISTENT,
    LanguageRow,
    as_row,
    language_feature,
)
from ember.data.language import motion as motion_row
from ember.data.motions import MOTION_STYLE, write_motions
from ember.vla.motion_ee import GRIPPER_NAME, JointFK, ee_source, episode_ee, feature_names
from ember.vla.motions import MotionConfig, MotionVocabulary, derive_motions


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
    is rewritten atomically (:func:`ember.data.labels.rewrite_data_shards`: other columns copied untouched, other
    language rows kept), and ``meta/info.json``, the commit point, declares the language columns last if the
    dataset had none. An interrupted run leaves readers on the old features; running it again finishes the job
    (it replaces motion rows, never appends).
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
    if kind == "fk" or GRIPPER_NAME not in feature_names(feats[key]):
        try:
            fk = JointFK(str(info.get("robot_type") or ""), feature_names(feats.get("observation.state", {})))
        except DatasetError:
            if kind == "fk":
                raise
    vocab = MotionVocabulary.from_config(config)
    fps = float(ds.fps)
    source = f"{kind}:{key if kind == 'columns' else info.get('robot_type')}"
    written = [f"wrote {write_motions(root, vocab.motions, config.to_dict(), source)}"]

    merged = dict(feats)
    if not all(k in feats for k in LANGUAGE_COLUMNS):
        head = {k: v for k, v in feats.items() if k not in DEFAULT_FEATURES}
        head.update({k: language_feature() for k in LANGUAGE_COLUMNS if k not in head})
        merged = {**head, **{k: v for k, v in feats.items() if k in DEFAULT_FEATURES}}
    schema = columns.schema_for(merged)
    counts: Counter[str] = Counter()
    n_rows = 0

    def with_motions(part: pa.Table) -> pa.Table:
        nonlocal n_rows
        ee, grip = episode_ee(part, feats, kind, key, fk)
        motions = derive_motions(ee, grip, fps, config)
        counts.update(motions)
        new_rows = motion_rows(motions, fps)
        n_rows += len(new_rows)
        old = (
            part.column(LANGUAGE_PERSISTENT).to_pylist()[0]
            if LANGUAGE_PERSISTENT in part.column_names and part.num_rows
            else []
        )
        persistent = _merged_persistent(old, new_rows)
        arrays = []
        for fld in schema:
            if fld.name == LANGUAGE_PERSISTENT:
                arrays.append(columns.language_to_arrow(LANGUAGE_PERSISTENT, [persistent] * part.num_rows))
            elif fld.name == LANGUAGE_EVENTS and LANGUAGE_EVENTS not in part.column_names:
                arrays.append(columns.language_to_arrow(LANGUAGE_EVENTS, [[] for _ in range(part.num_rows)]))
            else:
                arrays.append(part.column(fld.name).combine_chunks().cast(fld.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    written += rewrite_data_shards(ds, with_motions)
    if merged != feats:
        info["features"] = merged
        meta.write_info(root, info)  # commit point
        written.append(f"declared {list(LANGUAGE_COLUMNS)} in {root / layout.INFO_PATH}")
    return MotionSummary(
        root=str(root),
        source=source,
        episodes=ds.num_episodes,
        frames=ds.num_frames,
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


__all__ = ["MotionSummary", "dataset_motions", "label_motions", "motion_rows"]
