"""Undo a ``save_episode`` that failed half way (disk full, I/O error), so disk and writer agree again.

Why: each file of a save is replaced atomically, but one save replaces several files in turn (data
shard, video shards, episodes shard, tasks, stats, info.json last). A failure after the first
replace keeps the committed episodes readable (info.json still counts only them), yet the failed
episode's rows and frames are left in the shards: LeRobot's loader would read them, and the writer
could not append the same episode again without duplicating it.

Before a file is replaced, :meth:`SaveJournal.protect` hard-links its current version to a hidden
``.<name>.tmp-*`` name. That copies no data, and the old blocks stay allocated only until the save
ends, so :meth:`SaveJournal.rollback` is one rename per file and needs no free space, which is what
a full disk leaves. :meth:`SaveJournal.commit` drops the links once info.json is written. A crash
in between leaves them as temp files, which ``ember data repair`` deletes like any other.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

from ember.data.atomic import fsync_dir, temp_path_for

log = logging.getLogger(__name__)

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class SaveJournal:
    """The files one save is about to replace and how to put each back."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._files: list[
            tuple[Path, Path | None, bool]
        ] = []  # (path, hard link to the old version, existed)
        self._dirs: list[Path] = []  # directories this save created, outermost first
        self._seen: set[Path] = set()
        self.last: Path | None = None
        """The file protected last: the one being written when a save fails."""

    def protect(self, path: Path) -> None:
        """Remember ``path`` as it is now (call just before replacing it)."""
        self.last = path
        if path in self._seen:
            return
        self._seen.add(path)
        missing = []
        parent = path.parent
        while parent != self._root and self._root in parent.parents and not parent.exists():
            missing.append(parent)
            parent = parent.parent
        self._dirs.extend(reversed(missing))
        if not path.exists():
            self._files.append((path, None, False))
            return
        backup = temp_path_for(path)
        try:
            os.link(path, backup)
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                raise  # the disk is full already: nothing has been replaced, the caller reports it
            # no hard links here (e.g. FAT): the save still works, but a failure can't be undone in place
            log.warning("cannot hard-link %s (%s); a failed save will need `ember data repair`", path, exc)
            backup = None
        self._files.append((path, backup, True))

    def rollback(self) -> bool:
        """Put every protected file back as it was; True when all of them are byte-for-byte restored."""
        restored = True
        for path, backup, existed in reversed(self._files):
            try:
                if backup is not None and path.exists() and os.path.samefile(backup, path):
                    backup.unlink()  # never replaced (and rename() onto the same inode would do nothing)
                elif backup is not None:
                    os.replace(backup, path)  # a rename: works on a full disk
                elif existed:
                    restored = False  # replaced without a way back; the reader still ignores the extra rows
                else:
                    path.unlink(missing_ok=True)
                fsync_dir(path.parent)
            except OSError as exc:
                log.error("could not restore %s after a failed save: %s", path, exc)
                restored = False
        for directory in reversed(self._dirs):
            with contextlib.suppress(OSError):  # not empty (someone else's file) or already gone
                directory.rmdir()
        self._files, self._dirs, self._seen = [], [], set()
        return restored

    def commit(self) -> None:
        """The save is committed (info.json written): the old versions are no longer needed."""
        for _, backup, _ in self._files:
            if backup is not None:
                with contextlib.suppress(OSError):  # a leftover temp link is harmless; repair removes it
                    backup.unlink()
        self._files, self._dirs, self._seen = [], [], set()
