"""Run folders: where every verb writes its config, metrics, plots and videos.

A run folder that already holds files is never reused silently: the caller must
ask for ``overwrite`` (the old folder is moved aside, not deleted) or ``resume``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ember.errors import RunFolderError


def default_out(kind: str, name: str = "") -> str:
    """``outputs/<kind>/<date>_<time>[_name]``: a fresh folder per run, as LeRobot does."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    return f"outputs/{kind}/{stamp}{'_' + name if name else ''}"


def prepare_run_folder(path: str | Path, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Create ``path`` for a new run; refuse a non-empty one unless told what to do with it."""
    folder = Path(path)
    if folder.exists() and any(folder.iterdir()):
        if resume:
            return folder
        if not overwrite:
            raise RunFolderError(
                f"output folder '{folder}' already holds a run; pass a new --out, or --overwrite=true "
                f"(the old run is moved to '{folder}.old-<time>'), or --resume=true where the verb supports it."
            )
        backup = folder.with_name(f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(folder), str(backup))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
