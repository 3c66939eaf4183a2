"""Where things live in a LeRobot v3 dataset directory (``lerobot@7427f31`` path templates).

Kept in one place so that the writer, the reader and the tests can never disagree about a
path: every shard is ``chunk-XXX/file-XXX`` with at most ``chunks_size`` files per chunk.
"""

from __future__ import annotations

from pathlib import Path

CODEBASE_VERSION = "v3.0"

DEFAULT_CHUNK_SIZE = 1000
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_DIR = "data"
VIDEO_DIR = "videos"

CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = DATA_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = VIDEO_DIR + "/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"

CACHE_DIR = ".cache/ember-frames"
"""Decoded-frame cache of :class:`~ember.data.windows.WindowDataset` (never ``.cache/huggingface``,
which LeRobot treats as a legacy Hub download marker)."""


def next_chunk_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """The shard after ``(chunk, file)``: a new chunk directory every ``chunks_size`` files."""
    if file_index >= chunks_size - 1:
        return chunk_index + 1, 0
    return chunk_index, file_index + 1


def data_file(root: Path, chunk_index: int, file_index: int) -> Path:
    return root / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)


def video_file(root: Path, video_key: str, chunk_index: int, file_index: int) -> Path:
    return root / VIDEO_PATH.format(video_key=video_key, chunk_index=chunk_index, file_index=file_index)


def episodes_file(root: Path, chunk_index: int, file_index: int) -> Path:
    return root / EPISODES_PATH.format(chunk_index=chunk_index, file_index=file_index)
