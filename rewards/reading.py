"""Reading a dataset into what labelers see: :class:`~rewards.base.EpisodeView` and :class:`~rewards.base.Segment`.

Only what the labeler declared (:class:`ember.rewards.base.Reads`) is read: the cameras it asks for (no video is decoded
for a labeler with ``cameras_needed = False``), its required and optional columns, the robot's own
``observation.state`` and the instruction (the episode's ``task``). Everything a labeler cannot work with (a camera
the dataset lacks, a missing column, an empty instruction the labeler needs) is refused here, before any labeling,
with a one-line :class:`~rewards.base.LabelError` that says what to do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ember.data import EmberDataset
from ember.data import columns as arrow_columns
from ember.rewards.base import EpisodeView, LabelError, Reads, Segment

STATE = "observation.state"
IMAGE_PREFIX = "observation.images."


def camera_key(name: str) -> str:
    """``front`` or ``observation.images.front`` -> ``observation.images.front``."""
    return name if name.startswith("observation.") else f"{IMAGE_PREFIX}{name}"


def pick_camera(name: str, available: Sequence[str], flag: str = "--labeler.camera") -> tuple[str, ...]:
    """The one camera a single-view labeler reads: ``name`` (checked) or, when empty, the dataset's first."""
    if not available:
        raise LabelError(
            "the dataset has no RGB camera, and this labeler reads camera frames; label a dataset "
            "recorded with cameras (ember collect --cameras=...)."
        )
    if not name:
        return (available[0],)
    key = camera_key(name)
    if key not in available:
        short = ", ".join(a.removeprefix(IMAGE_PREFIX) for a in available)
        raise LabelError(f"camera {name!r} is not in the dataset; pass {flag}=<one of: {short}>.")
    return (key,)


class DatasetReader:
    """Episodes of ``dataset`` as a labeler (``reader``) needs them; checks everything up front."""

    def __init__(self, dataset: EmberDataset, reader: Reads) -> None:
        self.ds = dataset
        feats = dataset.features
        reader.check_dataset(feats)
        self.cameras = tuple(reader.cameras(dataset.rgb_keys)) if reader.cameras_needed else ()
        lacking = [c for c in self.cameras if c not in dataset.rgb_keys]
        if lacking:
            raise LabelError(
                f"camera(s) {lacking} are not RGB cameras of {dataset.root} (it has "
                f"{dataset.rgb_keys}); choose one of those."
            )
        missing = [c for c in reader.columns if c not in feats]
        if missing:
            raise LabelError(
                f"{dataset.root} has no column(s) {missing}, which this labeler reads; its features: "
                f"{sorted(k for k in feats if not k.startswith(IMAGE_PREFIX))}."
            )
        self.columns = tuple(
            dict.fromkeys([*reader.columns, *(c for c in reader.optional_columns if c in feats)])
        )
        self._table: Any = None
        self.instructions = [self._instruction(i) for i in range(dataset.num_episodes)]
        if reader.needs_instruction:
            empty = [i for i, text in enumerate(self.instructions) if not text.strip()]
            if empty:
                raise LabelError(
                    f"episode(s) {empty[:10]} of {dataset.root} have no instruction (empty `task`), "
                    "and this labeler compares frames with it; record episodes with a task string."
                )

    # ------------------------------------------------------------------ per-frame columns, no video
    def _rows(self, i: int) -> Any:
        if self._table is None:
            self._table = self.ds.frame_table()
            self._index = self._table.column("index").to_numpy()
        lo, hi = self.ds.episode_bounds(i)
        a, b = np.searchsorted(self._index, lo), np.searchsorted(self._index, hi)
        return self._table.slice(a, b - a)

    def _instruction(self, i: int) -> str:
        rows = self._rows(i)
        if rows.num_rows == 0:
            return ""
        task_index = int(rows.column("task_index")[0].as_py())
        return str(self.ds.meta.tasks[task_index]) if task_index < len(self.ds.meta.tasks) else ""

    def column(self, name: str, i: int) -> np.ndarray:
        return np.asarray(arrow_columns.to_numpy(self._rows(i).column(name), self.ds.features[name]))

    def state(self, i: int) -> np.ndarray | None:
        return self.column(STATE, i) if STATE in self.ds.features else None

    def images(self, i: int) -> dict[str, np.ndarray]:
        return {key: self.ds.frames(key, i) for key in self.cameras}

    def episode(self, i: int) -> EpisodeView:
        return EpisodeView(
            episode_index=i,
            instruction=self.instructions[i],
            images=self.images(i),
            state=self.state(i),
            columns={name: self.column(name, i) for name in self.columns},
        )

    def length(self, i: int) -> int:
        return self.ds.episode_length(i)


class SegmentReader:
    """Slices episodes into :class:`Segment` s, keeping the last few decoded episodes (pairs revisit them)."""

    def __init__(self, reader: DatasetReader, keep: int = 8) -> None:
        self.reader, self.keep = reader, keep
        self._episodes: OrderedDict[int, EpisodeView] = OrderedDict()

    def _episode(self, i: int) -> EpisodeView:
        if i in self._episodes:
            self._episodes.move_to_end(i)
            return self._episodes[i]
        view = self.reader.episode(i)
        self._episodes[i] = view
        while len(self._episodes) > self.keep:
            self._episodes.popitem(last=False)
        return view

    def segment(self, episode_index: int, start: int, end: int) -> Segment:
        view = self._episode(episode_index)
        return Segment(
            episode_index=episode_index,
            start=start,
            end=end,
            instruction=view.instruction,
            images={k: v[start:end] for k, v in view.images.items()},
            state=None if view.state is None else view.state[start:end],
            columns={k: v[start:end] for k, v in view.columns.items()},
        )
