"""Sketches from recorded frames: RT-Sketch goal drawings and RT-Trajectory end-effector paths.

Goal sketch (RT-Sketch): a line drawing of the goal frame. RT-Sketch trains on sketches synthesized from goal
images and is then driven by hand drawings, so the synthetic ones must look like a person's: edges of the colour
image (Sobel on every channel, so a red cube on a brown table has an outline even at equal brightness), then
*stroke augmentation*: varying thickness, a small affine wobble, strokes dropped and a few stray ones added.

Trajectory sketch (RT-Trajectory): the end effector's hindsight path projected into the camera and drawn on black,
its colour fading from red (start) to green (end), with blue dots where the gripper closes and blue rings where it
opens. Drawn at the camera's resolution so it lines up with the image pixel for pixel (early fusion).

All functions take and return uint8 ``HxWxC`` numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ember.conditioning.errors import ConditioningError
from ember.transforms import chroma_uint8


@dataclass(frozen=True)
class StrokeAugmentation:
    """How much synthetic sketches vary (RT-Sketch's augmentations, sized for 64-128 px images)."""

    max_shift: float = 2.0
    """Pixels of random translation."""
    max_rotation: float = 3.0
    """Degrees of random rotation about the image centre."""
    max_scale: float = 0.04
    """Relative random scaling."""
    drop_fraction: float = 0.15
    """Up to this fraction of stroke pixels is erased in small blobs."""
    stray_strokes: int = 2
    """Up to this many short random lines are added."""
    thicken_probability: float = 0.5
    """Probability of thickening the strokes by one pixel."""
    point_jitter: float = 0.7
    """Pixels of Gaussian jitter of each trajectory point."""


DEFAULT_AUGMENTATION = StrokeAugmentation()
NO_AUGMENTATION = StrokeAugmentation(0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0)


# ---------------------------------------------------------------------------------------------- goal sketch
SKETCH_SOURCES = ("rgb", "chroma")


def chroma(frame: np.ndarray) -> np.ndarray:
    """Brightness-normalized colour of an RGB frame, uint8 (H, W, 3) centred on 128: grey, white and black pixels
    (any shade) become mid-grey, a coloured pixel keeps its hue and saturation whatever the light. What is left
    of a scene is its coloured objects: textures in grey, shading and a dimmer light vanish
    (:func:`ember.transforms.chroma`, the one implementation the policies read frames with too)."""
    return chroma_uint8(frame)


def edge_map(frame: np.ndarray, threshold: float = 0.18, source: str = "rgb") -> np.ndarray:
    """Binary edges (H, W) bool of an RGB frame: Sobel magnitude on each channel, max over channels.

    ``source="chroma"`` takes the edges of :func:`chroma` instead: outlines of coloured objects only.
    """
    if source not in SKETCH_SOURCES:
        raise ConditioningError(f"sketch edge source {source!r} is unknown; use one of {SKETCH_SOURCES}")
    if source == "chroma":
        frame = chroma(frame)
    img = np.asarray(frame, dtype=np.float32) / 255.0
    if img.ndim == 2:
        img = img[..., None]
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    gx = (pad[:-2, 2:] + 2 * pad[1:-1, 2:] + pad[2:, 2:]) - (
        pad[:-2, :-2] + 2 * pad[1:-1, :-2] + pad[2:, :-2]
    )
    gy = (pad[2:, :-2] + 2 * pad[2:, 1:-1] + pad[2:, 2:]) - (
        pad[:-2, :-2] + 2 * pad[:-2, 1:-1] + pad[:-2, 2:]
    )
    magnitude = np.sqrt(gx**2 + gy**2).max(axis=-1) / 4.0
    # thin: keep a pixel only where it is a local maximum along x or y (a cheap non-maximum suppression)
    m = np.pad(magnitude, 1, mode="edge")
    ridge = ((magnitude >= m[1:-1, :-2]) & (magnitude >= m[1:-1, 2:])) | (
        (magnitude >= m[:-2, 1:-1]) & (magnitude >= m[2:, 1:-1])
    )
    return (magnitude > threshold) & ridge


def goal_sketch(
    frame: np.ndarray,
    rng: np.random.Generator | None = None,
    augment: StrokeAugmentation = DEFAULT_AUGMENTATION,
    threshold: float = 0.18,
    source: str = "rgb",
) -> np.ndarray:
    """RT-Sketch goal drawing (H, W, 1) uint8 of ``frame``: strokes 255 on 0; augmented when ``rng`` is given.
    ``source``: edges of the colour image (``rgb``) or of coloured objects only (``chroma``)."""
    edges = edge_map(frame, threshold, source)
    image = Image.fromarray((edges * 255).astype(np.uint8), mode="L")
    if rng is not None:
        image = _augment_strokes(image, rng, augment)
    return np.asarray(image, dtype=np.uint8)[..., None]


def _augment_strokes(image: Image.Image, rng: np.random.Generator, aug: StrokeAugmentation) -> Image.Image:
    w, h = image.size
    if rng.random() < aug.thicken_probability:
        image = image.filter(ImageFilter.MaxFilter(3))
    if aug.max_rotation or aug.max_shift or aug.max_scale:
        image = image.rotate(
            float(rng.uniform(-aug.max_rotation, aug.max_rotation)),
            resample=Image.Resampling.BILINEAR,
            translate=(
                float(rng.uniform(-aug.max_shift, aug.max_shift)),
                float(rng.uniform(-aug.max_shift, aug.max_shift)),
            ),
        )
        scale = 1.0 + float(rng.uniform(-aug.max_scale, aug.max_scale))
        if abs(scale - 1.0) > 1e-3:
            sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
            scaled = image.resize((sw, sh), Image.Resampling.BILINEAR)
            canvas = Image.new("L", (w, h), 0)
            canvas.paste(scaled, ((w - sw) // 2, (h - sh) // 2))
            image = canvas
    arr = np.asarray(image, dtype=np.float32)
    if aug.drop_fraction > 0:  # erase stroke pixels in small square blobs
        on = np.argwhere(arr > 64)
        n_blobs = int(rng.integers(0, max(1, int(len(on) * aug.drop_fraction / 9)) + 1)) if len(on) else 0
        for y, x in on[rng.choice(len(on), size=min(n_blobs, len(on)), replace=False)] if n_blobs else []:
            arr[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = 0
    image = Image.fromarray(arr.clip(0, 255).astype(np.uint8), mode="L")
    if aug.stray_strokes:
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(0, aug.stray_strokes + 1))):
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            length, angle = rng.uniform(2, 0.12 * w), rng.uniform(0, 2 * np.pi)
            draw.line(
                [(x0, y0), (x0 + length * np.cos(angle), y0 + length * np.sin(angle))], fill=255, width=1
            )
    return image


# ---------------------------------------------------------------------------------------- trajectory sketch
def trajectory_sketch(
    points_uv: np.ndarray,
    size: tuple[int, int],
    gripper: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    augment: StrokeAugmentation = DEFAULT_AUGMENTATION,
    width: int = 2,
) -> np.ndarray:
    """RT-Trajectory path (H, W, 3) uint8: ``points_uv`` (T, 2) pixels in time order, drawn red -> green.

    ``gripper`` (T,) in [0, 1] (closure) adds a blue dot where it closes and a blue ring where it opens.
    Points outside the image are drawn clipped (the visible part of the path still counts).
    """
    h, w = size
    pts = np.asarray(points_uv, dtype=np.float64).reshape(-1, 2)
    keep = np.all(np.isfinite(pts), axis=1)
    if keep.sum() < 1:
        raise ConditioningError(
            "the trajectory has no point in front of the camera; check the camera geometry"
        )
    if rng is not None and augment.point_jitter > 0:
        pts = pts + rng.normal(0.0, augment.point_jitter, pts.shape)
    line_width = width if rng is None else int(rng.integers(max(1, width - 1), width + 1))
    image = Image.new("RGB", (w, h), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    idx = np.flatnonzero(keep)
    n = len(pts)
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        p = 0.5 * (a + b) / max(1, n - 1)
        color = (int(255 * (1 - p)), int(255 * p), 0)
        draw.line([tuple(pts[a]), tuple(pts[b])], fill=color, width=line_width)
    if len(idx) == 1:
        u, v = pts[idx[0]]
        draw.ellipse([u - 1, v - 1, u + 1, v + 1], fill=(255, 0, 0))
    if gripper is not None:
        closed = np.asarray(gripper, dtype=np.float64).reshape(-1) > 0.5
        for t in np.flatnonzero(closed[1:] != closed[:-1]) + 1:
            if not keep[t]:
                continue
            u, v = pts[t]
            r = max(2.0, 0.03 * min(h, w))
            if closed[t]:
                draw.ellipse([u - r, v - r, u + r, v + r], fill=(0, 0, 255))
            else:
                draw.ellipse([u - r, v - r, u + r, v + r], outline=(0, 0, 255), width=1)
    return np.asarray(image, dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ keypoints
KEYPOINT_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 0),
    (255, 128, 0),
)
"""Colour of keypoint k in drawings (magenta: the object to act on, cyan: where it goes, ...)."""


def keypoint_image(keypoints: np.ndarray, size: tuple[int, int], radius: float = 0.04) -> np.ndarray:
    """Keypoints (K, 2) in [0, 1] image coordinates drawn as coloured dots on black: (H, W, 3) uint8."""
    h, w = size
    image = Image.new("RGB", (w, h), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    r = max(1.5, radius * min(h, w))
    for k, (x, y) in enumerate(np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)):
        u, v = x * w, y * h
        draw.ellipse([u - r, v - r, u + r, v + r], fill=KEYPOINT_COLORS[k % len(KEYPOINT_COLORS)])
    return np.asarray(image, dtype=np.uint8)


def keypoints_from_image(image: np.ndarray, num_keypoints: int, tolerance: int = 80) -> np.ndarray:
    """Inverse of :func:`keypoint_image`: the centroid of each keypoint colour, (K, 2) in [0, 1]."""
    img = np.asarray(image, dtype=np.int32)[..., :3]
    h, w = img.shape[:2]
    out = np.zeros((num_keypoints, 2), dtype=np.float32)
    for k in range(num_keypoints):
        color = np.asarray(KEYPOINT_COLORS[k % len(KEYPOINT_COLORS)])
        mask = np.abs(img - color).max(axis=-1) <= tolerance
        if not mask.any():
            raise ConditioningError(
                f"keypoint {k} is not drawn: paint a dot in RGB {tuple(color)} (keypoint colours, in order: "
                f"{list(KEYPOINT_COLORS[:num_keypoints])})"
            )
        ys, xs = np.nonzero(mask)
        out[k] = ((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h)
    return out
