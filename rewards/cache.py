"""The content cache of ``ember label``: a labeled episode (or compared pair) is never labeled twice.

Key = sha256 of what the labeler saw (every frame's bytes of the cameras it reads, the per-frame columns and joint
state it reads, the instruction) and the labeler's :meth:`~rewards.base.Labeler.fingerprint` (its class, config and
weights' hash). So a re-run after an interruption, or on an unchanged dataset, skips the episodes already done, and
any change to frames, instruction, config or weights misses the cache. Entries are small files written atomically
(a ``.partial`` file renamed into place), under ``<dataset>/.cache/ember-labels/`` by default (next to ember's
frame cache, ignored by ``ember data verify``), or a user directory (``--cache_dir``). Deleting the folder is
always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ember.rewards.base import EpisodeView, FrameLabels, Segment

DATASET_CACHE_DIR = ".cache/ember-labels"


def default_cache_dir(root: Path) -> Path:
    """``<root>/.cache/ember-labels``, or ``$XDG_CACHE_HOME/ember/labels`` when the dataset is read-only."""
    here = root / DATASET_CACHE_DIR
    try:
        here.mkdir(parents=True, exist_ok=True)
        if os.access(here, os.W_OK):
            return here
    except OSError:
        pass
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ember" / "labels"


def _update_array(h: Any, name: str, arr: np.ndarray | None) -> None:
    if arr is None:
        h.update(f"{name}:none;".encode())
        return
    arr = np.ascontiguousarray(arr)
    h.update(f"{name}:{arr.dtype.str}:{arr.shape};".encode())
    h.update(memoryview(arr).cast("B"))


def _update_view(h: Any, view: EpisodeView | Segment) -> None:
    h.update(view.instruction.encode() + b"\0")
    for key in sorted(view.images):
        _update_array(h, f"image:{key}", view.images[key])
    _update_array(h, "state", view.state)
    for key in sorted(view.columns):
        _update_array(h, f"column:{key}", view.columns[key])


def episode_key(fingerprint: str, view: EpisodeView) -> str:
    h = hashlib.sha256(f"episode;{fingerprint};".encode())
    _update_view(h, view)
    return h.hexdigest()


def pair_key(fingerprint: str, a: Segment, b: Segment) -> str:
    h = hashlib.sha256(f"pair;{fingerprint};".encode())
    _update_view(h, a)
    h.update(b"|")
    _update_view(h, b)
    return h.hexdigest()


class LabelCache:
    """Episode labels (``.npz``) and pair preferences (``.json``) by content key; ``directory=None`` disables it."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0
        self.misses = 0

    def _path(self, key: str, suffix: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}{suffix}"

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get_labels(self, key: str) -> FrameLabels | None:
        if self.directory is None:
            return None
        path = self._path(key, ".npz")
        try:
            with np.load(path) as data:
                labels = FrameLabels(data["reward"], data["success"] if "success" in data.files else None)
        except (OSError, ValueError, KeyError):  # absent or a torn file: label again
            self.misses += 1
            return None
        self.hits += 1
        return labels

    def put_labels(self, key: str, labels: FrameLabels) -> None:
        if self.directory is None:
            return
        import io

        buf = io.BytesIO()
        arrays = {"reward": labels.reward}
        if labels.success is not None:
            arrays["success"] = labels.success
        np.savez(buf, **arrays)
        self._write(self._path(key, ".npz"), buf.getvalue())

    def get_json(self, key: str) -> dict[str, Any] | None:
        if self.directory is None:
            return None
        try:
            value = json.loads(self._path(key, ".json").read_text())
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put_json(self, key: str, value: dict[str, Any]) -> None:
        if self.directory is not None:
            self._write(self._path(key, ".json"), json.dumps(value).encode())
