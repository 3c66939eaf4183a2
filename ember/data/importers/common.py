"""What every importer returns, and the camera-feature rule they share."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.data.errors import DatasetError


@dataclass
class ImportResult:
    root: Path
    episodes: int
    frames: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def camera_feature(shape: tuple[int, ...], use_videos: bool) -> dict[str, Any]:
    """RGB camera: a video when asked for and the size allows yuv420p (even H and W), else PNG images."""
    h, w = int(shape[0]), int(shape[1])
    dtype = "video" if use_videos and h % 2 == 0 and w % 2 == 0 else "image"
    return {"dtype": dtype, "shape": [h, w, 3], "names": ["height", "width", "channels"]}


def require(module: str, pip_name: str, what: str) -> Any:
    """Import an optional dependency or say exactly what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DatasetError(f"{what} needs the '{pip_name}' package: pip install {pip_name}") from exc
