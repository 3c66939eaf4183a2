"""Record episodes into a LeRobot v3 dataset, one durable episode at a time.

Usage::

    with DatasetWriter.create(root, fps=30, features=features) as w:
        for step in episode:
            w.add_frame({**obs, "action": a, "task": "push the cube"})
        w.save_episode()          # on disk (fsynced) when this returns

Order of writes in ``save_episode`` (each file: temp name -> fsync -> atomic rename):
data shard, video shards, episodes-meta shard, tasks.parquet, stats.json, and info.json last.
``info.json``'s ``total_episodes`` is the commit point: a crash anywhere before it leaves the
previously saved episodes byte-for-byte intact and the reader ignores the partial one.

Ctrl-C and SIGTERM arriving *during* ``save_episode`` are held back until the save has finished
(see :mod:`ember.data.signals`), so a clean stop never leaves a half-written episode behind,
not even one that ``repair`` would have to cut off.

A save that fails (disk full, I/O error) is undone: every file it replaced is put back as it was
(:mod:`ember.data.journal`), so the disk holds exactly the episodes saved before, and the episode stays
buffered. A full disk raises :class:`~ember.data.errors.DiskFullError`; free space and call
``save_episode()`` again, or ``clear_episode()`` to drop the episode.

Language (``language=True``): frames may carry ``language_persistent`` / ``language_events`` rows,
and :meth:`DatasetWriter.add_language` attaches rows by time; see :mod:`ember.data.language`.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ember.data import columns, layout, meta, stats
from ember.data.errors import DatasetError, DiskFullError, describe_bytes, free_bytes
from ember.data.features import (
    check_fps,
    depth_keys,
    language_keys,
    normalize_features,
    rgb_keys,
    user_keys,
    validate_frame,
    video_keys,
    visual_keys,
)
from ember.data.journal import DISK_FULL_ERRNOS, SaveJournal
from ember.data.language import LANGUAGE_COLUMNS, EpisodeLanguageBuffer, LanguageRow, language_feature
from ember.data.shards import ShardWriter
from ember.data.signals import deferred_signals
from ember.data.video import EpisodeEncoder, VideoCodec, choose_codec

log = logging.getLogger(__name__)


class DatasetWriter:
    """Writes a LeRobot v3 dataset (parquet + mp4 + meta) episode by episode. Create with :meth:`create`."""

    def __init__(self, root: Path, info: dict[str, Any], codec: VideoCodec | None) -> None:
        self._root = root
        self._info = info
        self._features: dict[str, dict] = info["features"]
        self._fps: int = info["fps"]
        self._codec = codec
        self._tasks: dict[str, int] = {}
        self._shards = ShardWriter(root, info, video_keys(self._features))
        self._stats = stats.DatasetStats(self._features)
        self._finalized = False
        self._broken: str | None = None
        self._reset_episode()

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        root: str | Path,
        fps: int,
        features: Mapping[str, Mapping[str, Any]],
        robot_type: str | None = None,
        use_videos: bool = True,
        data_files_size_in_mb: float = layout.DEFAULT_DATA_FILE_SIZE_IN_MB,
        video_files_size_in_mb: float = layout.DEFAULT_VIDEO_FILE_SIZE_IN_MB,
        chunks_size: int = layout.DEFAULT_CHUNK_SIZE,
        video_codec: str | None = None,
        language: bool = False,
    ) -> DatasetWriter:
        """Start a new dataset at ``root`` (which must not exist or be empty) and write its info.json.

        ``video_codec``: 'libx264' (default when available) or 'libsvtav1'.
        ``language``: add LeRobot's ``language_persistent`` / ``language_events`` columns (same as
        declaring them with dtype ``"language"`` in ``features``).
        """
        root = Path(root)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise DatasetError(
                f"{root} already exists and is not empty; ember never writes into an existing dataset. "
                "Choose a new directory or delete this one."
            )
        fps = check_fps(fps)
        for name, value in (
            ("data_files_size_in_mb", data_files_size_in_mb),
            ("video_files_size_in_mb", video_files_size_in_mb),
            ("chunks_size", chunks_size),
        ):
            if value <= 0:
                raise DatasetError(f"{name} must be positive, got {value}.")
        features = dict(features)
        if language:
            for key in LANGUAGE_COLUMNS:
                features.setdefault(key, language_feature())
        feats = normalize_features(features, use_videos)
        codec = choose_codec(video_codec) if video_keys(feats) else None
        for key in video_keys(feats):
            h, w, _ = feats[key]["shape"]
            assert codec is not None
            feats[key]["info"] = codec.info(fps, h, w)
        info: dict[str, Any] = {
            "codebase_version": layout.CODEBASE_VERSION,
            "robot_type": robot_type,
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": chunks_size,
            "data_files_size_in_mb": data_files_size_in_mb,
            "video_files_size_in_mb": video_files_size_in_mb,
            "fps": fps,
            "splits": {},
            "data_path": layout.DATA_PATH,
            "video_path": layout.VIDEO_PATH if use_videos else None,  # as LeRobot, even without cameras
            "features": feats,
        }
        try:
            root.mkdir(parents=True, exist_ok=True)
            meta.write_info(root, info)
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                raise _disk_full(
                    exc, root, f"could not create the dataset {root}", "Free some space first"
                ) from exc
            raise DatasetError(
                f"could not create the dataset {root}: {exc}. Fix the path or permissions."
            ) from exc
        return cls(root, info, codec)

    # ------------------------------------------------------------------ properties
    @property
    def root(self) -> Path:
        return self._root

    @property
    def fps(self) -> int:
        return self._fps

    @property
    def features(self) -> dict[str, dict]:
        """All features, including the default per-frame columns."""
        return self._features

    @property
    def num_episodes(self) -> int:
        """Episodes saved so far."""
        return int(self._info["total_episodes"])

    @property
    def num_frames(self) -> int:
        """Frames in saved episodes."""
        return int(self._info["total_frames"])

    @property
    def failed(self) -> str | None:
        """Why this writer cannot record any more (a save failed and could not be undone), else None."""
        return self._broken

    @property
    def episode_length(self) -> int:
        """Frames buffered in the episode being recorded."""
        return self._len

    # ------------------------------------------------------------------ recording
    def add_frame(self, frame: Mapping[str, Any]) -> None:
        """Validate and buffer one frame (every declared feature plus ``"task"``); video frames are
        encoded right away so an episode never sits in memory as raw pixels."""
        self._check_open()
        self._check_not_sealed()
        if self._len == 0:
            self._fix_depth_units(frame)
        clean, task = validate_frame(frame, self._features)
        rows = {key: frame[key] for key in language_keys(self._features) if key in frame}
        if rows:  # validate every row before buffering any, so a rejected frame leaves no trace
            staged = self._lang.copy()
            for key, values in rows.items():
                if not isinstance(values, list | tuple):
                    raise DatasetError(
                        f"frame[{key!r}] must be a list of language rows, got {type(values).__name__}."
                    )
                for row in values:
                    staged.add(row, self._len, None, column=key)
            self._lang = staged
        for key in rgb_keys(self._features):
            self._ep_pixels[key].update(clean[key])
        for key in video_keys(self._features):
            if key not in self._encoders:
                h, w, _ = self._features[key]["shape"]
                assert self._codec is not None
                self._encoders[key] = EpisodeEncoder(self._codec, self._fps, h, w)
            self._encoders[key].add(clean[key])
        for key in self._buffer:
            self._buffer[key].append(clean[key])
        self._ep_tasks.append(task)
        self._len += 1

    def add_language(self, row: LanguageRow | Mapping[str, Any], timestamp: float | None = None) -> None:
        """Attach a language row to the episode being recorded.

        Persistent styles (subtask, plan, memory, motion, task_aug) become active at ``timestamp``
        (seconds from the episode start; default: the time of the next frame to be added). Events
        (interjection, vqa, trace) land on the first frame at or after ``timestamp`` (default: the
        next frame). Rows are validated now; see :func:`ember.data.language.instruction`,
        :func:`~ember.data.language.motion`, :func:`~ember.data.language.correction`.
        """
        self._check_open()
        self._check_not_sealed()
        if not language_keys(self._features):
            raise DatasetError(
                f"{self._root} has no language columns; create the writer with language=True to record "
                "instructions, motions and corrections per frame."
            )
        self._lang.add(row, self._len, timestamp)

    def clear_episode(self) -> None:
        """Drop the episode being recorded (nothing of it has touched the disk)."""
        for enc in self._encoders.values():
            enc.cancel()
        self._reset_episode()

    def save_episode(self) -> int:
        """Write the buffered episode durably and return its index.

        When this returns, the episode's rows, video frames and metadata are fsynced on disk. A
        Ctrl-C/SIGTERM that arrives meanwhile takes effect right after the episode is committed.

        If writing fails (:class:`DiskFullError` for a full disk, :class:`DatasetError` otherwise),
        the files are put back as they were and the episode stays buffered: call ``save_episode()``
        again once the cause is fixed, or ``clear_episode()``.
        """
        self._check_open()
        if self._len == 0:
            raise DatasetError("save_episode() called with no frames; call add_frame() first.")
        if language_keys(self._features):
            self._lang.columns(self._len)  # reject rows past the last frame before touching the disk
        with deferred_signals():  # a Ctrl-C/SIGTERM during the save is re-raised after it
            journal = SaveJournal(self._root)
            shards, stats_snap = self._shards.state(), self._stats.snapshot()
            try:
                index = self._save(journal)
            except Exception as exc:
                restored = journal.rollback()
                self._shards.restore(shards)
                self._stats.restore(stats_snap)
                raise self._save_failed(exc, restored, journal.last) from exc
            journal.commit()
            self._reset_episode()
        return index

    def finalize(self) -> None:
        """Close the writer (idempotent). Everything saved is already durable; an episode still
        being recorded is discarded, as in LeRobot."""
        if self._finalized:
            return
        if self._len:
            log.warning("finalize(): discarding %d unsaved frames of the episode in progress", self._len)
            self.clear_episode()
        self._finalized = True

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finalize()

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._finalized:
            raise DatasetError(f"the writer of {self._root} is finalized; create a new one to record more.")
        if self._broken:
            raise DatasetError(
                f"the writer of {self._root} cannot continue: {self._broken}. Saved episodes are intact."
            )

    def _check_not_sealed(self) -> None:
        if self._sealed:
            raise DatasetError(
                f"episode {self.num_episodes} is complete but could not be saved ({self._sealed}); call "
                "save_episode() to retry or clear_episode() to drop it before adding frames."
            )

    def _save_failed(self, exc: Exception, restored: bool, writing: Path | None) -> DatasetError:
        """The error to raise for a failed save; marks the writer broken unless it can go on as before."""
        ep, root = self.num_episodes, self._root
        intact = f"Episodes 0..{ep - 1} are intact" if ep else "No episode had been saved yet"
        disk_full = isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
        if isinstance(exc, OSError) and restored:
            self._sealed = exc.strerror or repr(exc)
            todo = (f"{intact} and nothing of episode {ep} was kept on disk. Episode {ep} is still buffered: "
                    f"{'free some space' if disk_full else 'fix the cause'}, then call save_episode() again, "
                    "or clear_episode() to drop it")  # fmt: skip
            if disk_full:
                return _disk_full(exc, root, f"could not save episode {ep} to {root}", todo, writing)
            return DatasetError(f"could not save episode {ep} to {root}: {exc}. {todo}.")
        self._broken = f"a previous save_episode() failed ({exc!r})"
        cleanup = ("" if restored else " The failed episode's rows may remain in the shards (ember's reader ignores "
                   "them): run `ember data repair` on the dataset before handing it to LeRobot.")  # fmt: skip
        if isinstance(exc, DatasetError):
            return DatasetError(f"{exc}{cleanup}")
        if disk_full:
            todo = f"{intact}; free some space and record the rest into a new dataset.{cleanup}"
            return _disk_full(exc, root, f"could not save episode {ep} to {root}", todo, writing)
        return DatasetError(f"could not save episode {ep} to {root}: {exc!r}. {intact}; fix the cause and record "
                            f"into a new dataset.{cleanup}")  # fmt: skip

    def _reset_episode(self) -> None:
        self._buffer: dict[str, list[Any]] = {k: [] for k in user_keys(self._features)}
        for k in video_keys(self._features):
            del self._buffer[k]  # video frames go straight to the encoder
        self._ep_tasks: list[str] = []
        self._ep_pixels = {k: stats.PixelHistogram() for k in rgb_keys(self._features)}
        self._lang = EpisodeLanguageBuffer(self._fps, visual_keys(self._features))
        self._encoders: dict[str, EpisodeEncoder] = {}
        self._videos: dict[str, bytes] = {}  # finished episode mp4s, kept so a failed save can be retried
        self._sealed: str | None = None  # why the last save of this episode failed (it can be retried)
        self._len = 0

    def _episode_arrays(self, ep_index: int, new_tasks: dict[str, int]) -> dict[str, Any]:
        """Stack the buffer into ``(T, *shape)`` columns and add the default columns."""
        n, start = self._len, self.num_frames
        arrays: dict[str, Any] = {}
        for key, values in self._buffer.items():
            ft = self._features[key]
            if ft["dtype"] == "string":
                arrays[key] = list(values)
            else:
                arr = np.stack(values)
                arrays[key] = arr.reshape(n) if ft["shape"] == [1] and ft["dtype"] != "image" else arr
        if language_keys(self._features):
            arrays.update(self._lang.columns(n))
        task_of = {**self._tasks, **new_tasks}
        arrays["timestamp"] = (np.arange(n, dtype=np.float64) / self._fps).astype(np.float32)
        arrays["frame_index"] = np.arange(n, dtype=np.int64)
        arrays["episode_index"] = np.full(n, ep_index, dtype=np.int64)
        arrays["index"] = np.arange(start, start + n, dtype=np.int64)
        arrays["task_index"] = np.array([task_of[t] for t in self._ep_tasks], dtype=np.int64)
        return arrays

    def _save(self, journal: SaveJournal) -> int:
        ep_index, n = self.num_episodes, self._len
        new_tasks: dict[str, int] = {}
        for t in self._ep_tasks:
            if t not in self._tasks and t not in new_tasks:
                new_tasks[t] = len(self._tasks) + len(new_tasks)
        arrays = self._episode_arrays(ep_index, new_tasks)

        ep_stats = self._stats.episode_stats(arrays, self._ep_pixels)

        row: dict[str, Any] = {
            "episode_index": ep_index,
            "tasks": list(dict.fromkeys(self._ep_tasks)),
            "length": n,
        }
        for key in video_keys(self._features):
            if key not in self._videos:
                self._videos[key] = self._encoders[key].finish()
                del self._encoders[key]
        row.update(
            self._shards.write_data(columns.to_table(arrays, self._features), self.num_frames, journal)
        )
        for key in video_keys(self._features):
            row.update(self._shards.write_video(key, self._videos[key], n, journal))
        row.update(stats.flatten_stats(ep_stats))
        self._shards.write_episode_meta(row, journal)

        # metadata last; info.json is the commit point
        all_tasks = {**self._tasks, **new_tasks}
        if new_tasks:
            journal.protect(self._root / layout.TASKS_PATH)
            meta.write_tasks(self._root, list(all_tasks))
        self._stats.add_episode(arrays, self._ep_pixels)
        journal.protect(self._root / layout.STATS_PATH)
        meta.write_stats(self._root, stats.stats_to_json(self._stats.stats()))
        info = dict(self._info)
        info["total_episodes"] = ep_index + 1
        info["total_frames"] = self.num_frames + n
        info["total_tasks"] = len(all_tasks)
        info["splits"] = {"train": f"0:{ep_index + 1}"}
        journal.protect(self._root / layout.INFO_PATH)
        meta.write_info(self._root, info)
        self._info = info
        self._tasks = all_tasks
        return ep_index

    def _fix_depth_units(self, frame: Mapping[str, Any]) -> None:
        """Record each depth feature's unit from the first frame when it was not declared (as LeRobot)."""
        for key in depth_keys(self._features):
            info = self._features[key].setdefault("info", {})
            if info.get("depth_unit") is None and key in frame:
                kind = np.asarray(frame[key]).dtype.kind
                info["depth_unit"] = "m" if kind == "f" else "mm"


def _disk_full(exc: OSError, root: Path, what: str, todo: str, writing: Path | None = None) -> DiskFullError:
    """A :class:`DiskFullError` that names the file, the free space and what to do."""
    path = writing or (Path(exc.filename) if exc.filename else root)
    free = free_bytes(root)
    full = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on the device"
    return DiskFullError(f"{what}: {full} while writing {path} ({describe_bytes(free)} free there). {todo}.",
                         path, free)  # fmt: skip
