"""Read a LeRobot v3 dataset (written by ember or by LeRobot) episode by episode.

Opening checks every shard cheaply (parquet footers, mp4 headers and durations) so that a
corrupt or truncated file is reported up front, naming the file and the episodes stored in it.
With ``strict=False`` those episodes are set aside (:attr:`EmberDataset.bad_episodes`) and all
others stay readable. ``meta/info.json``'s ``total_episodes`` decides which episodes exist:
rows or frames of an episode whose save was interrupted are ignored.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ember.data import columns, layout
from ember.data.errors import DatasetError
from ember.data.features import depth_keys, image_keys, language_keys, rgb_keys, video_keys, visual_keys
from ember.data.language import LANGUAGE_EVENTS, LANGUAGE_PERSISTENT, EpisodeLanguage, episode_language
from ember.data.meta import read_info, read_stats_json, read_tasks
from ember.data.stats import Stats, stats_from_json
from ember.data.video import decode_episode, probe_duration

log = logging.getLogger(__name__)


@dataclass
class DatasetMeta:
    """Everything under ``meta/``: info.json, stats.json (as numpy), tasks (by index), episodes rows."""

    info: dict[str, Any]
    stats: Stats
    tasks: list[str]
    episodes: pa.Table


class EmberDataset:
    """Random access to the episodes of a dataset at ``root``.

    ``strict=True`` (default) raises DatasetError on any corrupt or missing file; ``strict=False``
    only logs it, lists the affected episodes in :attr:`bad_episodes` and serves the rest.
    """

    def __init__(self, root: str | Path, strict: bool = True) -> None:
        self.root = Path(root)
        self.strict = strict
        self.bad_episodes: dict[int, str] = {}
        info = read_info(self.root)
        total = int(info["total_episodes"])
        tasks = read_tasks(self.root) if total or info.get("total_tasks") else []
        stats_obj = read_stats_json(self.root)
        if stats_obj is None and total:
            self._problem(
                f"{self.root / layout.STATS_PATH} is missing; normalization stats are unavailable.", []
            )
        episodes = self._load_episodes(info)
        self.meta = DatasetMeta(info, stats_from_json(stats_obj or {}), tasks, episodes)
        pos = {ep: r for r, ep in enumerate(episodes.column("episode_index").to_pylist())}
        self._rows: dict[str, list[Any]] = {}
        for name in episodes.column_names:
            if not name.startswith("stats/") and name != "tasks":
                values = episodes.column(name).to_pylist()
                self._rows[name] = [values[pos[i]] if i in pos else None for i in range(total)]
        self._tables: dict[Path, pa.Table] = {}
        self._frame_table: pa.Table | None = None
        self._check_files()
        if self.bad_episodes:
            log.warning(
                "%s: %d unreadable episode(s): %s", self.root, len(self.bad_episodes), self.bad_episodes
            )

    # ------------------------------------------------------------------ basic facts
    @property
    def fps(self) -> int:
        return int(self.meta.info["fps"])

    @property
    def features(self) -> dict[str, dict]:
        return self.meta.info["features"]

    @property
    def num_episodes(self) -> int:
        return int(self.meta.info["total_episodes"])

    @property
    def num_frames(self) -> int:
        return int(self.meta.info["total_frames"])

    @property
    def video_keys(self) -> list[str]:
        return video_keys(self.features)

    @property
    def image_keys(self) -> list[str]:
        """PNG-in-parquet image features."""
        return image_keys(self.features)

    @property
    def camera_keys(self) -> list[str]:
        """All visual features (video and image, RGB and depth)."""
        return visual_keys(self.features)

    @property
    def depth_keys(self) -> list[str]:
        """Depth-map features (``is_depth_map``): ``(T, H, W, 1)`` float32 metres or uint16 millimetres."""
        return depth_keys(self.features)

    @property
    def rgb_keys(self) -> list[str]:
        """uint8 RGB cameras (video or image)."""
        return rgb_keys(self.features)

    @property
    def has_language(self) -> bool:
        return bool(language_keys(self.features))

    def language(self, i: int) -> EpisodeLanguage:
        """Language rows of episode ``i`` (empty if the dataset has no language columns)."""
        self._check_readable(i)
        if not self.has_language:
            return EpisodeLanguage(self.fps, [], {})
        table = self._episode_rows(i)
        cols = {
            k: table.column(k).to_pylist() if k in table.column_names else None
            for k in LANGUAGE_PERSISTENT_EVENTS
        }
        return episode_language(cols[LANGUAGE_PERSISTENT], cols[LANGUAGE_EVENTS], self.fps)

    def episode_bounds(self, i: int) -> tuple[int, int]:
        """Global frame ``index`` range ``[from, to)`` of episode ``i``."""
        self._check_index(i)
        return int(self._rows["dataset_from_index"][i]), int(self._rows["dataset_to_index"][i])

    def episode_length(self, i: int) -> int:
        self._check_index(i)
        return int(self._rows["length"][i])

    # ------------------------------------------------------------------ reading
    def episode(self, i: int) -> dict[str, Any]:
        """All columns of episode ``i``: ``(T, *shape)`` arrays (``(T,)`` for shape-[1] features, as
        LeRobot), videos/images decoded to uint8 ``(T, H, W, 3)``, plus ``"task"`` (array of str)."""
        self._check_readable(i)
        table = self._episode_rows(i)
        out: dict[str, Any] = {}
        for name in table.column_names:
            ft = self.features.get(name)
            if ft is None:
                continue
            values = columns.to_numpy(table.column(name), ft)
            out[name] = np.asarray(values) if ft["dtype"] == "string" else values
        for key in self.video_keys:
            out[key] = self.decode_video(key, i)
        out["task"] = np.asarray([self.meta.tasks[t] for t in out["task_index"]], dtype=str)
        return out

    def frames(self, key: str, i: int) -> np.ndarray:
        """Frames of camera ``key`` for episode ``i``: uint8 ``(T, H, W, 3)`` (RGB) or ``(T, H, W, 1)`` (depth)."""
        if key in self.video_keys:
            return self.decode_video(key, i)
        if key not in self.image_keys:
            raise DatasetError(f"{key!r} is not a camera of {self.root}; cameras: {self.camera_keys}.")
        self._check_readable(i)
        return columns.to_numpy(self._episode_rows(i).column(key), self.features[key])

    def source_file(self, key: str, i: int) -> Path:
        """The shard holding feature ``key`` of episode ``i`` (mp4 for videos, parquet otherwise)."""
        self._check_readable(i)
        return self._video_path(key, i) if key in self.video_keys else self._data_path(i)

    def video_from_timestamp(self, key: str, i: int) -> float:
        self._check_readable(i)
        return float(self._rows[f"videos/{key}/from_timestamp"][i])

    def decode_video(self, key: str, i: int) -> np.ndarray:
        """Frames of video feature ``key`` for episode ``i``: uint8 ``(T, H, W, 3)``."""
        self._check_readable(i)
        if key not in self.video_keys:
            raise DatasetError(
                f"{key!r} is not a video feature of {self.root}; video keys: {self.video_keys}."
            )
        path = self._video_path(key, i)
        try:
            frames = decode_episode(
                path, float(self._rows[f"videos/{key}/from_timestamp"][i]), self.episode_length(i), self.fps
            )
        except DatasetError as exc:
            raise DatasetError(f"episode {i}: {exc}") from exc
        h, w, _ = self.features[key]["shape"]
        if frames.shape[1:3] != (h, w):
            raise DatasetError(
                f"episode {i}: {path} holds {frames.shape[1:3]} frames, info.json says {(h, w)}."
            )
        return frames

    def frame_table(self) -> pa.Table:
        """All frames of all readable episodes as one Arrow table (videos excluded), in ``index`` order."""
        if self._frame_table is None:
            schema = self._data_schema()
            parts = [  # declared columns only: a column being added by add_columns is not committed yet
                self._episode_rows(i).select(schema.names)
                for i in range(self.num_episodes)
                if i not in self.bad_episodes
            ]
            self._frame_table = pa.concat_tables(parts) if parts else schema.empty_table()
        return self._frame_table

    # ------------------------------------------------------------------ internals
    def _problem(self, message: str, episodes: list[int]) -> None:
        """Record (strict=False) or raise (strict=True) an unreadable file."""
        if episodes:
            message = f"{message} Affected episode(s): {_ranges(episodes)}."
        if self.strict:
            raise DatasetError(
                message + " Re-record or restore the file, or open with EmberDataset(root, strict=False) "
                "to read the other episodes."
            )
        for ep in episodes:
            self.bad_episodes.setdefault(ep, message)
        if not episodes:
            log.warning(message)

    def _load_episodes(self, info: dict[str, Any]) -> pa.Table:
        total = int(info["total_episodes"])
        paths = sorted((self.root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet"))
        if total and not paths:
            raise DatasetError(
                f"{self.root / layout.EPISODES_DIR} holds no episode metadata but info.json lists {total} "
                "episodes; the dataset's meta/ folder is incomplete."
            )
        tables = []
        for path in paths:
            try:
                tables.append(pq.read_table(path, page_checksum_verification=True))
            except (OSError, pa.ArrowException) as exc:
                self._problem(f"episode metadata {path} is corrupt ({exc}).", [])
        if not tables:
            return pa.table({"episode_index": pa.array([], pa.int64())})
        table = pa.concat_tables(tables, promote_options="default")
        ep = np.asarray(table.column("episode_index").to_numpy(zero_copy_only=False))
        keep = np.nonzero(ep < total)[0]
        table = table.take(keep[np.argsort(ep[keep], kind="stable")])
        found = table.column("episode_index").to_pylist()
        if len(found) != len(set(found)):
            raise DatasetError(
                f"episode metadata in {self.root / layout.EPISODES_DIR} has duplicate rows for some episodes; "
                "it was not written by a single writer. Restore meta/episodes/ from the original dataset."
            )
        missing = sorted(set(range(total)) - set(found))
        if missing:
            self._problem(
                f"no metadata row in {self.root / layout.EPISODES_DIR} for some episodes (their metadata file "
                "is missing or unreadable).",
                missing,
            )
        return table

    def _data_path(self, i: int) -> Path:
        return layout.data_file(
            self.root, self._rows["data/chunk_index"][i], self._rows["data/file_index"][i]
        )

    def _video_path(self, key: str, i: int) -> Path:
        return layout.video_file(
            self.root,
            key,
            self._rows[f"videos/{key}/chunk_index"][i],
            self._rows[f"videos/{key}/file_index"][i],
        )

    def _check_files(self) -> None:
        good = [i for i in range(self.num_episodes) if i not in self.bad_episodes]
        by_file: dict[Path, list[int]] = defaultdict(list)
        for i in good:
            by_file[self._data_path(i)].append(i)
        for path, eps in by_file.items():
            try:
                md = pq.read_metadata(path)
            except FileNotFoundError:
                self._problem(f"data file {path} is missing.", eps)
                continue
            except (OSError, pa.ArrowException) as exc:
                self._problem(f"data file {path} is corrupt ({exc}).", eps)
                continue
            needed = max(self._rows["dataset_to_index"][i] for i in eps) - min(
                self._rows["dataset_from_index"][i] for i in eps
            )
            if md.num_rows < needed:
                self._problem(
                    f"data file {path} has {md.num_rows} rows, fewer than the {needed} expected.", eps
                )
        for key in self.video_keys:
            if f"videos/{key}/chunk_index" not in self._rows:
                self._problem(f"episode metadata has no columns for video {key!r}.", good)
                continue
            vids: dict[Path, list[int]] = defaultdict(list)
            for i in good:
                vids[self._video_path(key, i)].append(i)
            for path, eps in vids.items():
                if not path.is_file():
                    self._problem(f"video file {path} is missing.", eps)
                    continue
                try:
                    duration = probe_duration(path)
                except DatasetError as exc:
                    self._problem(f"video file {path} is corrupt ({exc}).", eps)
                    continue
                short = [
                    i for i in eps if self._rows[f"videos/{key}/to_timestamp"][i] > duration + 0.5 / self.fps
                ]
                if short:
                    self._problem(f"video file {path} is truncated (lasts {duration:.3f}s).", short)

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range: {self.root} has {self.num_episodes} episodes.")

    def _check_readable(self, i: int) -> None:
        self._check_index(i)
        if i in self.bad_episodes:
            raise DatasetError(f"episode {i} of {self.root} is unreadable: {self.bad_episodes[i]}")

    def _data_schema(self) -> pa.Schema:
        return columns.schema_for(self.features)

    def _read_data_file(self, path: Path, i: int) -> pa.Table:
        table = self._tables.get(path)
        if table is None:
            try:
                table = pq.read_table(path, page_checksum_verification=True)
            except (OSError, pa.ArrowException) as exc:
                eps = [
                    j
                    for j in range(self.num_episodes)
                    if self._rows["data/chunk_index"][j] is not None and self._data_path(j) == path
                ]
                for j in eps:
                    self.bad_episodes.setdefault(j, f"data file {path} is corrupt ({exc}).")
                raise DatasetError(
                    f"episode {i}: data file {path} is corrupt ({exc}). Affected episode(s): {_ranges(eps)}."
                ) from exc
            self._tables[path] = table
        return table

    def _episode_rows(self, i: int) -> pa.Table:
        path = self._data_path(i)
        table = self._read_data_file(path, i)
        start, stop = self.episode_bounds(i)
        index = table.column("index").to_numpy()
        lo, hi = np.searchsorted(index, start), np.searchsorted(index, stop)
        rows = table.slice(lo, hi - lo)
        if hi - lo != stop - start or (
            hi > lo and not np.array_equal(rows.column("episode_index").to_numpy(), np.full(hi - lo, i))
        ):
            raise DatasetError(
                f"episode {i}: {path} has {hi - lo} rows for index [{start}, {stop}) instead of {stop - start}; "
                "the data file and meta/episodes disagree."
            )
        return rows

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without cached tables (DataLoader workers re-read lazily)."""
        state = dict(self.__dict__)
        state["_tables"] = {}
        state["_frame_table"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"EmberDataset(root={str(self.root)!r}, episodes={self.num_episodes}, frames={self.num_frames}, "
            f"fps={self.fps}, features={list(self.features)})"
        )


LANGUAGE_PERSISTENT_EVENTS = (LANGUAGE_PERSISTENT, LANGUAGE_EVENTS)


def _ranges(eps: list[int]) -> str:
    """'0-3, 7' for [0, 1, 2, 3, 7]: short lists of episode indices in error messages."""
    eps = sorted(set(eps))
    parts: list[str] = []
    start = prev = None
    for e in [*eps, None]:
        if e is not None and prev is not None and e == prev + 1:
            prev = e
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = e
    return ", ".join(parts)
