"""Camera frames of training windows: decoded once per (camera, episode) into a memory-mapped file, or on demand.

The cache file lives under ``<root>/.cache/ember-frames`` (or a ``cache_dir``) and is named after its source
shard's path, size, mtime and the episode's bounds, so a rewritten shard is decoded again. Later epochs, other
processes and DataLoader workers read the memmap and never decode video again; memmaps are opened lazily in each
process (never pickled). ``use_cache=False`` decodes the frames a window needs on every access instead (what
LeRobot does; kept for the benchmark and for one-pass jobs).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ember.data import columns
from ember.data.atomic import temp_path_for
from ember.data.errors import DatasetError
from ember.data.features import is_depth
from ember.data.video import decode_episode

if TYPE_CHECKING:
    from ember.data.dataset import EmberDataset


class FrameCache:
    """Frames of ``dataset``'s cameras by episode, from the memmapped cache (``use_cache``) or decoded now."""

    def __init__(
        self,
        dataset: EmberDataset,
        cache_dir: Path,
        use_cache: bool = True,
        lengths: Mapping[int, int] | None = None,
    ) -> None:
        self.dataset, self.cache_dir, self.use_cache = dataset, Path(cache_dir), bool(use_cache)
        self._lengths = dict(lengths or {})
        self._memmaps: dict[tuple[str, int], np.ndarray] = {}
        self._pid = os.getpid()

    def window(self, key: str, ep: int, rows: np.ndarray) -> np.ndarray:
        """Frames ``rows`` (episode frame indices) of camera ``key``: from the memmap, or decoded now."""
        if self.use_cache:
            return self.frames(key, ep)[rows]
        lo, hi = int(rows.min()), int(rows.max()) + 1
        if key in self.dataset.video_keys:
            path = self.dataset.source_file(key, ep)
            try:
                part = decode_episode(
                    path, self.dataset.video_from_timestamp(key, ep), hi - lo, self.dataset.fps, first=lo
                )
            except DatasetError as exc:
                raise DatasetError(f"episode {ep}: {exc}") from exc
        else:
            table = self.dataset._episode_rows(ep).slice(lo, hi - lo)
            part = columns.to_numpy(table.column(key), self.dataset.features[key])
        return part[rows - lo]

    def warm(self, keys: Sequence[str], episodes: Sequence[int]) -> None:
        """Decode every missing (camera, episode) now, e.g. before starting DataLoader workers."""
        if not self.use_cache:
            return
        for key in keys:
            for ep in episodes:
                self.frames(key, ep)

    def path(self, key: str, ep: int) -> Path:
        """Cache file of camera ``key``, episode ``ep``; its name changes if the source shard changes."""
        src = self.dataset.source_file(key, ep)
        st = src.stat()
        start, stop = self.dataset.episode_bounds(ep)
        offset = self.dataset.video_from_timestamp(key, ep) if key in self.dataset.video_keys else 0.0
        tag = f"{src.relative_to(self.dataset.root)}|{st.st_size}|{st.st_mtime_ns}|{start}|{stop}|{offset!r}"
        digest = hashlib.sha1(tag.encode()).hexdigest()[:16]
        return self.cache_dir / key / f"episode-{ep:06d}-{digest}.u8"

    def frames(self, key: str, ep: int) -> np.ndarray:
        """Every frame of camera ``key`` in episode ``ep``, memory-mapped (decoded into the cache first if needed)."""
        if self._pid != os.getpid():  # forked worker: open our own maps
            self._memmaps, self._pid = {}, os.getpid()
        mm = self._memmaps.get((key, ep))
        if mm is None:
            mm = self._open_or_decode(key, ep)
            self._memmaps[(key, ep)] = mm
        return mm

    def _open_or_decode(self, key: str, ep: int) -> np.ndarray:
        h, w, c = self.dataset.features[key]["shape"]
        shape = (self._lengths.get(ep) or self.dataset.episode_length(ep), h, w, c)
        dtype = self._dtype(key)
        path = self.path(key, ep)
        if not (path.is_file() and path.stat().st_size == int(np.prod(shape)) * dtype.itemsize):
            frames = self.dataset.frames(key, ep)
            if frames.shape != shape or frames.dtype != dtype:
                raise DatasetError(f"episode {ep} camera {key!r}: decoded {frames.shape}, expected {shape}.")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = temp_path_for(path)
                np.ascontiguousarray(frames).tofile(tmp)
                os.replace(tmp, path)  # concurrent workers write identical bytes; last rename wins
            except OSError as exc:
                raise DatasetError(
                    f"cannot write the frame cache {path} ({exc}); pass cache_dir= a writable directory."
                ) from exc
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)

    def _dtype(self, key: str) -> np.dtype:
        ft = self.dataset.features[key]
        if not is_depth(ft):
            return np.dtype(np.uint8)
        return np.dtype(np.uint16 if (ft.get("info") or {}).get("depth_unit") == "mm" else np.float32)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_memmaps"] = {}  # a pickled memmap would be copied into memory; reopen lazily instead
        return state
