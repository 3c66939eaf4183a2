"""Rollout MP4s: one file per episode, encoded with the dataset's encoder (H.264, yuv420p).

Dataset shards need many episodes per file and GOP 2 for random access; a rollout video
is watched start to end, so it uses a long GOP, which makes it several times smaller.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from ember.data.video import EpisodeEncoder, VideoCodec

ROLLOUT_CODEC = VideoCodec(g=30, crf=23)


def write_mp4(frames: Sequence[np.ndarray], path: str | Path, fps: float) -> Path:
    """Encode uint8 HxWx3 frames; odd sizes are padded to even (yuv420p needs it)."""
    if len(frames) == 0:
        raise ValueError(f"no frames to write to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    pad_h, pad_w = height % 2, width % 2
    encoder = EpisodeEncoder(ROLLOUT_CODEC, int(round(fps)), height + pad_h, width + pad_w)
    for frame in frames:
        image = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        if pad_h or pad_w:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        encoder.add(image)
    path.write_bytes(encoder.finish())
    return path


def read_mp4(path: str | Path) -> np.ndarray:
    """Decode a whole video to uint8 (T, H, W, 3)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
