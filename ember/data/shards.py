"""Where each saved episode's files go: the ``chunk-XXX/file-XXX`` shards of ``data/``, ``videos/`` and
``meta/episodes/``, and the rule for rolling over to the next file.

Every write goes through :func:`ember.data.meta.write_parquet_row_groups` or
:func:`ember.data.video.append_to_shard` (temp name -> fsync -> atomic rename), so a shard on disk is
always a whole, readable file; :class:`~ember.data.writer.DatasetWriter` decides the order of the writes.
Each shard is handed to the save's :class:`~ember.data.journal.SaveJournal` before it is replaced, and
:meth:`ShardWriter.state` / :meth:`ShardWriter.restore` undo the bookkeeping, so a failed save can be retried.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa

from ember.data import layout, meta
from ember.data.journal import SaveJournal
from ember.data.video import append_to_shard

_MB = 1024**2
META_EPISODES_PER_FILE = 100
"""Episodes per ``meta/episodes`` file at most. Parquet cannot append, so every save rewrites the file it joins;
a row per episode (with per-feature stats) under a 100 MB limit made long collections quadratic
(bench/data/RESULTS.md). Readers (ember, LeRobot) read every file of ``meta/episodes``."""


class Shard:
    """The file the next episode of one kind goes to, and how full that file is."""

    def __init__(self, path_of: Callable[[int, int], Path]) -> None:
        self._path_of = path_of
        self.chunk = 0
        self.file = 0
        self.frames = 0  # frames (data, video) or episodes (meta) already in the file
        self.items: list[Any] = []  # data: episode tables; meta: episode rows

    @property
    def path(self) -> Path:
        return self._path_of(self.chunk, self.file)

    def roll_if_full(
        self, limit_mb: float, chunks_size: int, incoming: int = 1, nbytes: int | None = None
    ) -> None:
        """Move to the next file if adding the episode would pass ``limit_mb`` (LeRobot's rule).

        The episode's size is ``nbytes`` when known (an encoded mp4), else ``incoming`` units at the
        file's mean size per unit so far.
        """
        path = self.path
        if self.frames == 0 or not path.exists():
            return
        size_mb = path.stat().st_size / _MB
        incoming_mb = nbytes / _MB if nbytes is not None else size_mb / self.frames * incoming
        if size_mb + incoming_mb >= limit_mb:
            self.roll(chunks_size)

    def roll(self, chunks_size: int) -> None:
        """Start the next file (the current one stays as it is)."""
        self.chunk, self.file = layout.next_chunk_file(self.chunk, self.file, chunks_size)
        self.frames = 0
        self.items = []


class ShardWriter:
    """Appends one episode at a time to the current shards, with LeRobot's size limits from ``info``."""

    def __init__(self, root: Path, info: dict[str, Any], video_keys: list[str]) -> None:
        self._root = root
        self._fps: int = info["fps"]
        self._chunks_size: int = info["chunks_size"]
        self._data_mb: float = info["data_files_size_in_mb"]
        self._video_mb: float = info["video_files_size_in_mb"]
        self._data = Shard(lambda c, f: layout.data_file(root, c, f))
        self._meta = Shard(lambda c, f: layout.episodes_file(root, c, f))
        self._videos = {k: Shard(lambda c, f, k=k: layout.video_file(root, k, c, f)) for k in video_keys}

    def _all(self) -> list[Shard]:
        return [self._data, self._meta, *self._videos.values()]

    def state(self) -> list[tuple[int, int, int, list[Any]]]:
        """Where every shard stands now (see :meth:`restore`)."""
        return [(s.chunk, s.file, s.frames, list(s.items)) for s in self._all()]

    def restore(self, state: list[tuple[int, int, int, list[Any]]]) -> None:
        """Go back to ``state`` after a failed save (its files are rolled back by the journal)."""
        for shard, (chunk, file, frames, items) in zip(self._all(), state, strict=True):
            shard.chunk, shard.file, shard.frames, shard.items = chunk, file, frames, items

    def write_data(self, table: pa.Table, start: int, journal: SaveJournal) -> dict[str, Any]:
        """Append the episode's rows (global indices from ``start``); returns its ``data/*`` episode columns."""
        n, shard = table.num_rows, self._data
        shard.roll_if_full(self._data_mb, self._chunks_size, incoming=n)
        journal.protect(shard.path)
        meta.write_parquet_row_groups(shard.path, [*shard.items, table])
        shard.items.append(table)
        shard.frames += n
        return {
            "data/chunk_index": shard.chunk,
            "data/file_index": shard.file,
            "dataset_from_index": start,
            "dataset_to_index": start + n,
        }

    def write_video(self, key: str, episode_mp4: bytes, n: int, journal: SaveJournal) -> dict[str, Any]:
        """Append an encoded episode of ``n`` frames to ``key``'s shard; returns its ``videos/<key>/*`` columns."""
        shard = self._videos[key]
        shard.roll_if_full(self._video_mb, self._chunks_size, nbytes=len(episode_mp4))
        journal.protect(shard.path)
        start = Fraction(shard.frames, self._fps)
        append_to_shard(shard.path, episode_mp4, start)
        shard.frames += n
        return {
            f"videos/{key}/chunk_index": shard.chunk,
            f"videos/{key}/file_index": shard.file,
            f"videos/{key}/from_timestamp": float(start),
            f"videos/{key}/to_timestamp": float(Fraction(shard.frames, self._fps)),
        }

    def write_episode_meta(self, row: dict[str, Any], journal: SaveJournal) -> None:
        """Append the episode's row to ``meta/episodes/`` (adding its own ``meta/episodes/*`` columns)."""
        shard = self._meta
        if shard.frames >= META_EPISODES_PER_FILE:
            shard.roll(self._chunks_size)
        shard.roll_if_full(self._data_mb, self._chunks_size)
        journal.protect(shard.path)
        row["meta/episodes/chunk_index"] = shard.chunk
        row["meta/episodes/file_index"] = shard.file
        rows = [*shard.items, pa.Table.from_pylist([row])]  # one-row tables: no re-conversion of old rows
        meta.write_parquet_row_groups(shard.path, [pa.concat_tables(rows, promote_options="default")])
        shard.items = rows
        shard.frames += 1
