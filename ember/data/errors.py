"""The exception type of ``ember.data`` (and its one subclass, for a full disk).

Every failure a user can act on (bad frame, corrupt shard, missing metadata) raises
:class:`DatasetError` with a message that names the key, file or episode involved and
says what to do, so callers never have to dig through pyarrow/PyAV tracebacks.
:class:`DiskFullError` is a ``DatasetError`` that a recorder may want to tell apart: the
write can succeed once space is freed, so retrying (not re-recording) is the fix.
"""

from __future__ import annotations

import shutil
from pathlib import Path


class DatasetError(Exception):
    """A dataset could not be written or read; the message says what is wrong and how to fix it."""


class DiskFullError(DatasetError):
    """No space left on the device (or quota exceeded) while writing ``path``; ``free_bytes`` left there."""

    def __init__(self, message: str, path: Path, free_bytes: int | None) -> None:
        super().__init__(message)
        self.path = path
        self.free_bytes = free_bytes


def free_bytes(path: Path) -> int | None:
    """Bytes free to an unprivileged user on ``path``'s filesystem (its nearest existing ancestor's)."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def describe_bytes(n: int | None) -> str:
    if n is None:
        return "unknown space"
    return f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n / 1024:.0f} KiB"
