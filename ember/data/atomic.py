"""Durable, all-or-nothing file replacement.

Shards hold many episodes, so appending an episode rewrites the shard. Writing the new
version under a temporary name, fsyncing it and then ``os.replace``-ing it over the old one
means a crash (even SIGKILL or power loss after the fsync) leaves either the old shard or the
new one on disk, never a torn file. Temporary names start with '.' and end in ``.tmp-*`` so
that LeRobot's ``*/*.parquet`` globs never pick them up.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def temp_path_for(path: Path) -> Path:
    """A sibling temporary name for ``path`` (same directory, so the rename is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX needs the directory entry synced too)."""
    with contextlib.suppress(OSError):  # some filesystems refuse O_RDONLY on directories
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success fsync it and atomically move it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` and atomically install the result at ``path``."""
    with replacing(path) as tmp:
        write(tmp)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=4, ensure_ascii=False) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
