"""The conditioning drawn into rollout videos, so a reader sees what the policy was asked to do.

Each video frame is the scene render beside the policy's camera view with the conditioning drawn on top: sketch
strokes in place (they share the camera's pixels), keypoints as coloured dots, the goal image as an inset, and the
instruction as a caption.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageDraw

from ember.conditioning.sketch import keypoint_image
from ember.policies.conditioning.keys import GOAL_IMAGE, GOAL_SKETCH, KEYPOINTS, TRAJECTORY_SKETCH

GOAL_SKETCH_COLOR = np.array([255, 255, 0], dtype=np.float32)


def conditioning_view(
    camera: np.ndarray | None, conditioning: Mapping[str, np.ndarray], size: tuple[int, int]
) -> np.ndarray:
    """The camera frame (H, W, 3) uint8 (black when None) with the conditioning drawn over it."""
    h, w = size
    view = (
        np.zeros((h, w, 3), np.float32) if camera is None else np.asarray(camera, np.float32)[..., :3].copy()
    )
    if GOAL_SKETCH in conditioning:
        alpha = np.asarray(conditioning[GOAL_SKETCH], np.float32)[..., :1] / 255.0
        view = view * (1 - 0.8 * alpha) + GOAL_SKETCH_COLOR * 0.8 * alpha
    for drawing in (
        conditioning.get(TRAJECTORY_SKETCH),
        keypoint_image(conditioning[KEYPOINTS], (h, w)) if KEYPOINTS in conditioning else None,
    ):
        if drawing is not None:
            d = np.asarray(drawing, np.float32)
            mask = d.max(axis=-1, keepdims=True) > 0
            view = np.where(mask, d, view)
    if GOAL_IMAGE in conditioning:
        inset = Image.fromarray(np.asarray(conditioning[GOAL_IMAGE], np.uint8)).resize((w // 3, h // 3))
        view[: h // 3, w - w // 3 :] = np.asarray(inset, np.float32)
        view[h // 3, w - w // 3 :] = 255.0
        view[: h // 3, w - w // 3] = 255.0
    return view.clip(0, 255).astype(np.uint8)


def compose_frame(render: np.ndarray, view: np.ndarray, caption: str = "") -> np.ndarray:
    """``render`` and ``view`` (scaled to the render's height) side by side, with an optional caption."""
    h = render.shape[0]
    scale = h / view.shape[0]
    panel = Image.fromarray(view).resize((max(1, round(view.shape[1] * scale)), h), Image.Resampling.NEAREST)
    frame = np.concatenate([np.asarray(render, np.uint8)[..., :3], np.asarray(panel)], axis=1)
    if caption:
        image = Image.fromarray(frame)
        ImageDraw.Draw(image).text((4, 2), caption[:80], fill=(255, 255, 255))
        frame = np.asarray(image)
    return np.ascontiguousarray(frame)
