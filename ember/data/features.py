"""Feature dictionaries (LeRobot v3 ``info.json["features"]``) and per-frame validation.

A feature is ``{"dtype": ..., "shape": [...], "names": [...]}``. The five per-frame
bookkeeping columns of LeRobot (``timestamp``, ``frame_index``, ``episode_index``, ``index``,
``task_index``) are added here so that no caller has to remember them. Frames are checked
*when they are added*, because a NaN or a wrong shape found at training time is far more
expensive to trace back to the recording that produced it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ember.data.errors import DatasetError

DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

FLOAT_DTYPES = frozenset({"float16", "float32", "float64"})
INT_DTYPES = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"})
NUMERIC_DTYPES = FLOAT_DTYPES | INT_DTYPES | {"bool"}
VISUAL_DTYPES = frozenset({"image", "video"})
ALL_DTYPES = NUMERIC_DTYPES | VISUAL_DTYPES | {"string"}

RESERVED_KEYS = frozenset(DEFAULT_FEATURES) | {"task"}


def normalize_features(features: Mapping[str, Mapping[str, Any]], use_videos: bool) -> dict[str, dict]:
    """Check user features and return them (deep-copied, shapes as lists) plus the default columns.

    Raises DatasetError on anything LeRobot would refuse or that ember cannot encode.
    """
    if not isinstance(features, Mapping) or not features:
        raise DatasetError("features must be a non-empty dict {key: {'dtype', 'shape', 'names'}}.")
    out: dict[str, dict] = {}
    for key, ft in features.items():
        if key in RESERVED_KEYS:
            raise DatasetError(
                f"feature {key!r} is reserved: ember adds {sorted(DEFAULT_FEATURES)} itself and takes the "
                "instruction from frame['task']. Remove it from the features dict."
            )
        if not isinstance(key, str) or not key or "/" in key:
            raise DatasetError(f"feature name {key!r} is invalid: use a non-empty string without '/'.")
        if not isinstance(ft, Mapping) or "dtype" not in ft or "shape" not in ft:
            raise DatasetError(f"feature {key!r} must be a dict with 'dtype' and 'shape' (and 'names').")
        dtype = ft["dtype"]
        if dtype not in ALL_DTYPES:
            raise DatasetError(f"feature {key!r} has dtype {dtype!r}; use one of {sorted(ALL_DTYPES)}.")
        try:
            shape = [int(s) for s in ft["shape"]]
        except (TypeError, ValueError):
            raise DatasetError(f"feature {key!r} has shape {ft['shape']!r}; give a list of ints.") from None
        if not shape or any(s <= 0 for s in shape):
            raise DatasetError(f"feature {key!r} has shape {shape}; every dimension must be positive.")
        new = copy.deepcopy(dict(ft))
        new["shape"] = shape
        new.setdefault("names", None)
        if dtype in VISUAL_DTYPES:
            _check_visual(key, dtype, shape, use_videos)
            if new["names"] is None:
                new["names"] = ["height", "width", "channels"]
        if dtype == "string" and shape != [1]:
            raise DatasetError(f"string feature {key!r} must have shape [1], not {shape}.")
        out[key] = new
    for key, ft in DEFAULT_FEATURES.items():
        out[key] = copy.deepcopy(ft)
    return out


def _check_visual(key: str, dtype: str, shape: list[int], use_videos: bool) -> None:
    if len(shape) != 3 or shape[2] != 3:
        raise DatasetError(
            f"{dtype} feature {key!r} has shape {shape}; ember stores RGB frames as [height, width, 3]."
        )
    if dtype == "video":
        if not use_videos:
            raise DatasetError(
                f"feature {key!r} is a video but use_videos=False: declare it as dtype 'image' "
                "(PNG frames in parquet) or create the dataset with use_videos=True."
            )
        if shape[0] % 2 or shape[1] % 2:
            raise DatasetError(
                f"video feature {key!r} is {shape[0]}x{shape[1]}; yuv420p video needs even height and "
                "width. Crop or resize the camera by one pixel."
            )


def user_keys(features: Mapping[str, Mapping]) -> list[str]:
    """Keys that every frame passed to ``add_frame`` must carry (all but the default columns)."""
    return [k for k in features if k not in DEFAULT_FEATURES]


def video_keys(features: Mapping[str, Mapping]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] == "video"]


def image_keys(features: Mapping[str, Mapping]) -> list[str]:
    """Keys of PNG-in-parquet image features (not videos)."""
    return [k for k, ft in features.items() if ft["dtype"] == "image"]


def visual_keys(features: Mapping[str, Mapping]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] in VISUAL_DTYPES]


def numeric_keys(features: Mapping[str, Mapping]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] in NUMERIC_DTYPES]


def validate_frame(frame: Mapping[str, Any], features: Mapping[str, Mapping]) -> tuple[dict[str, Any], str]:
    """Check one frame against ``features``; return ``(clean values, task)``.

    Clean values are numpy arrays of the feature's dtype and shape (numeric, visual) or ``str``.
    Raises DatasetError naming the offending key.
    """
    if not isinstance(frame, Mapping):
        raise DatasetError(f"a frame must be a dict, got {type(frame).__name__}.")
    task = frame.get("task")
    if not isinstance(task, str) or not task:
        raise DatasetError(
            "frame['task'] is missing or not a non-empty str: every frame carries its instruction "
            "(e.g. 'push the cube to the goal')."
        )
    expected = set(user_keys(features))
    given = set(frame) - {"task"}
    missing, extra = expected - given, given - expected
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {sorted(missing)}")
        if extra:
            parts.append(f"unexpected {sorted(extra)}")
        raise DatasetError(
            "frame keys do not match the dataset features: " + "; ".join(parts) + ". Pass exactly the "
            "declared features plus 'task' (timestamp/frame_index/index/... are added automatically)."
        )
    clean = {key: validate_value(key, frame[key], features[key]) for key in expected}
    return clean, task


def validate_value(key: str, value: Any, ft: Mapping[str, Any]) -> Any:
    """Check and convert one value of feature ``key``; see :func:`validate_frame`."""
    dtype, shape = ft["dtype"], tuple(ft["shape"])
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    if dtype == "string":
        if not isinstance(value, str):
            raise DatasetError(f"feature {key!r} is a string feature but got {type(value).__name__}.")
        return value
    arr = np.asarray(value)
    if dtype in VISUAL_DTYPES:
        if arr.dtype != np.uint8:
            raise DatasetError(
                f"image {key!r} has dtype {arr.dtype}; pass uint8 HxWx3 frames "
                "(e.g. (img * 255).round().astype(np.uint8) for float images in [0, 1])."
            )
        if arr.shape != shape:
            raise DatasetError(f"image {key!r} has shape {arr.shape}; the feature declares {shape} (HxWx3).")
        return np.ascontiguousarray(arr)
    if arr.shape != shape and not (shape == (1,) and arr.shape == ()):
        raise DatasetError(f"feature {key!r} has shape {arr.shape}; the feature declares {shape}.")
    if arr.dtype.kind not in "biuf":
        raise DatasetError(f"feature {key!r} must be numeric ({dtype}) but got dtype {arr.dtype}.")
    if dtype in FLOAT_DTYPES:
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise DatasetError(
                f"feature {key!r} contains NaN or inf: {arr.tolist()}. Fix the source (sensor dropout, "
                "division by zero) or drop the episode with clear_episode()."
            )
        out = arr.astype(dtype)
        if not np.all(np.isfinite(out)):
            raise DatasetError(f"feature {key!r} overflows {dtype}: {arr.tolist()}.")
    elif dtype == "bool":
        if arr.dtype.kind != "b" and not np.all((arr == 0) | (arr == 1)):
            raise DatasetError(f"bool feature {key!r} got non-boolean values {arr.tolist()}.")
        out = arr.astype(bool)
    else:
        if arr.dtype.kind == "f":
            raise DatasetError(
                f"integer feature {key!r} ({dtype}) got float values {arr.tolist()}; cast explicitly "
                "if that is intended."
            )
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise DatasetError(f"feature {key!r} has values outside the {dtype} range: {arr.tolist()}.")
        out = arr.astype(dtype)
    return out.reshape(shape)


def check_fps(fps: Any) -> int:
    """LeRobot stores fps as a positive int; refuse anything else early."""
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or fps <= 0:
        if isinstance(fps, float) and fps > 0 and math.isclose(fps, round(fps)):
            return int(round(fps))
        raise DatasetError(f"fps must be a positive int (LeRobot stores an int), got {fps!r}.")
    return int(fps)
