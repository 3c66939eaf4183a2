"""Conditioning a user gives at evaluation: a drawn image file, or keypoints typed as numbers.

A person drawing a goal sketch usually draws dark lines on white; the policy was trained on bright strokes on black
(what edge detection gives). So a drawing is resized to the camera's resolution and, when its background is
bright, inverted (goal sketch) or has its background removed (trajectory sketch, whose colours mean time: start red,
end green, as the trajectory sketches of training are drawn). Keypoints are dots in the keypoint colours
(:data:`~ember.conditioning.sketch.KEYPOINT_COLORS`) or ``"x,y;x,y"`` in [0, 1] image coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ember.conditioning.errors import ConditioningError
from ember.conditioning.sketch import keypoints_from_image
from ember.policies.conditioning.keys import (
    GOAL_IMAGE,
    GOAL_SKETCH,
    IMAGE_CHANNELS,
    INITIAL_IMAGE,
    TRAJECTORY_SKETCH,
)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3)."""
    p = Path(path)
    if not p.is_file():
        raise ConditioningError(f"conditioning image {p} does not exist")
    try:
        with Image.open(p) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except OSError as exc:
        raise ConditioningError(f"{p} is not an image PIL can read ({exc}); save it as PNG") from exc


def image_conditioning(image: np.ndarray, kind: str, size: tuple[int, int]) -> np.ndarray:
    """A user's drawing (any size, RGB uint8) as the policy reads ``kind``: (H, W, C) uint8 at ``size``."""
    if kind not in IMAGE_CHANNELS:
        raise ConditioningError(f"{kind!r} is not an image conditioning; image kinds: {list(IMAGE_CHANNELS)}")
    h, w = size
    photo = kind in (GOAL_IMAGE, INITIAL_IMAGE)
    resample = Image.Resampling.BILINEAR if photo else Image.Resampling.BOX
    rgb = np.asarray(Image.fromarray(np.asarray(image, dtype=np.uint8)[..., :3]).resize((w, h), resample))
    if photo:
        return rgb
    bright_background = float(np.median(rgb.max(axis=-1))) > 127
    if kind == GOAL_SKETCH:
        strokes = rgb.max(axis=-1) if not bright_background else 255 - rgb.min(axis=-1)
        # any visible stroke counts fully: a thin line shrunk to a few pixels must not fade away
        return np.where(strokes > 48, 255, 0).astype(np.uint8)[..., None]
    assert kind == TRAJECTORY_SKETCH
    if bright_background:
        rgb = np.where((rgb.min(axis=-1) > 200)[..., None], 0, rgb).astype(np.uint8)
    return rgb


def load_image_conditioning(path: str | Path, kind: str, size: tuple[int, int]) -> np.ndarray:
    """:func:`image_conditioning` of the image file at ``path``."""
    return image_conditioning(read_image(path), kind, size)


def parse_keypoints(spec: str, num_keypoints: int) -> np.ndarray:
    """Keypoints (K, 2) in [0, 1] from ``"x,y;x,y"`` or from an image file with dots in the keypoint colours."""
    text = spec.strip()
    if Path(text).suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"):
        return keypoints_from_image(read_image(text), num_keypoints)
    try:
        points = np.array(
            [[float(v) for v in part.split(",")] for part in text.split(";") if part.strip()],
            dtype=np.float32,
        )
    except ValueError as exc:
        raise ConditioningError(
            f"keypoints {spec!r} must look like 'x,y;x,y' (image fractions in [0, 1])"
        ) from exc
    if points.shape != (num_keypoints, 2) or not np.all((points >= 0) & (points <= 1)):
        raise ConditioningError(
            f"keypoints {spec!r} must be {num_keypoints} points 'x,y' in [0, 1] separated by ';'"
        )
    return points
