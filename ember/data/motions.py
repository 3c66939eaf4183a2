"""``meta/motions.json``: a dataset's RT-H motion vocabulary, and each frame's motion read back from the dataset.

``ember motions`` (``ember.vla.motion_labels.label_motions``) stores each episode's motions as ``motion`` rows of
``language_persistent`` (one row each time the motion changes) and the vocabulary next to them::

    {"motions": ["stay", "close the gripper", ...], "config": {...the MotionConfig...}, "source": "fk:panda"}

``motions`` is ordered: a motion's index there is what a motion head predicts, so the window loader
(``WindowDataset(motion=True)``), ``ember train --policy.motion_vocabulary=dataset`` and the labeler read and write
the file only through this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.data.atomic import write_json_atomic
from ember.data.errors import DatasetError

if TYPE_CHECKING:
    from ember.data.dataset import EmberDataset

MOTIONS_PATH = "meta/motions.json"
"""Vocabulary + config of the dataset's ``motion`` rows, relative to the dataset root."""
MOTION_STYLE = "motion"
"""The ``style`` of the motion rows in ``language_persistent``."""


def check_motions(motions: Any, where: str) -> list[str]:
    """``motions`` as a list of distinct strings (at least one), or a DatasetError naming ``where``."""
    if not isinstance(motions, list | tuple) or not all(isinstance(m, str) for m in motions):
        raise DatasetError(f"{where}: 'motions' must be a list of strings, got {motions!r}.")
    if not motions:
        raise DatasetError(f"{where}: a motion vocabulary needs at least one motion.")
    dup = sorted({m for m in motions if list(motions).count(m) > 1})
    if dup:
        raise DatasetError(f"{where}: duplicate motions in the vocabulary: {dup}.")
    return list(motions)


def write_motions(root: str | Path, motions: Sequence[str], config: Mapping[str, Any], source: str) -> Path:
    """Write ``<root>/meta/motions.json`` atomically; returns its path."""
    path = Path(root) / MOTIONS_PATH
    body = {"motions": check_motions(list(motions), str(path)), "config": dict(config), "source": str(source)}
    write_json_atomic(path, body)
    return path


def read_motions(root: str | Path) -> dict[str, Any]:
    """The checked contents of ``<root>/meta/motions.json`` (``motions``, and ``config`` / ``source`` when
    recorded); an error saying what to run when the dataset has no motions yet."""
    import json

    path = Path(root) / MOTIONS_PATH
    if not path.is_file():
        raise DatasetError(
            f"{path} is missing: label the dataset's motions first (`ember motions --dataset={root}`)."
        )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DatasetError(f"{path} is not JSON ({exc}); label the motions again (`ember motions`).") from exc
    if not isinstance(body, dict):
        raise DatasetError(f"{path} must hold a JSON object with 'motions', got {body!r}.")
    motions = body.get("motions", body.get("vocabulary"))
    return {**body, "motions": check_motions(motions, str(path))}


def read_motion_vocabulary(root: str | Path) -> list[str]:
    """The ordered motion phrases of ``<root>/meta/motions.json``."""
    return read_motions(root)["motions"]


def frame_motion_indices(
    dataset: EmberDataset, episodes: Sequence[int], ep_of_row: np.ndarray, start_of_row: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """``(vocabulary, motion index of every row)`` for rows whose episode is ``ep_of_row`` and whose episode
    starts at row ``start_of_row`` (the layout of a window loader's rows), from each episode's motion rows."""
    if not dataset.has_language:
        raise DatasetError(
            f"{dataset.root} has no language motions; label them with `ember motions --dataset={dataset.root}` "
            "or train without motion=True."
        )
    vocab = read_motion_vocabulary(dataset.root)
    index = {m: k for k, m in enumerate(vocab)}
    out = np.zeros(len(ep_of_row), dtype=np.int64)
    fps = float(dataset.fps)
    for ep in episodes:
        rows = [r for r in dataset.language(ep).persistent if r.style == MOTION_STYLE]
        where = np.flatnonzero(ep_of_row == ep)
        if not rows:
            raise DatasetError(f"episode {ep} of {dataset.root} has no motion rows; re-run `ember motions`.")
        unknown = sorted({r.content for r in rows if r.content not in index})
        if unknown:
            raise DatasetError(
                f"episode {ep}: motions {unknown} are not in the vocabulary of {dataset.root / MOTIONS_PATH}."
            )
        times = np.asarray([float(r.timestamp or 0.0) for r in rows])
        frame_t = (where - start_of_row[where]) / fps
        active = np.clip(np.searchsorted(times, frame_t + 1e-6, side="right") - 1, 0, len(rows) - 1)
        out[where] = [index[rows[k].content] for k in active]
    return vocab, out
