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
from ember.data.language import LANGUAGE_COLUMNS, LANGUAGE_DTYPE

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
ALL_DTYPES = NUMERIC_DTYPES | VISUAL_DTYPES | {"string", LANGUAGE_DTYPE}

RESERVED_KEYS = frozenset(DEFAULT_FEATURES) | {"task"}

DEPTH_PREFIX = "observation.depth."
DEPTH_UNIT_DTYPES = {"m": "float32", "mm": "uint16"}
"""Depth maps are stored as LeRobot stores raw depth images: float32 metres or uint16 millimetres."""


def is_depth(ft: Mapping[str, Any]) -> bool:
    """LeRobot's depth marker: ``info.is_depth_map`` (or the legacy ``video.is_depth_map``)."""
    info = ft.get("info") or {}
    video_info = ft.get("video_info")
    return bool(
        info.get("is_depth_map")
        or info.get("video.is_depth_map")
        or (isinstance(video_info, Mapping) and video_info.get("video.is_depth_map"))
    )


def depth_unit(ft: Mapping[str, Any]) -> str | None:
    return (ft.get("info") or {}).get("depth_unit")


def _normalize_depth(key: str, ft: Mapping[str, Any]) -> dict[str, Any]:
    """Depth as LeRobot writes it: ``image`` feature ``[H, W, 1]`` flagged ``is_depth_map`` with a unit.

    Accepts the shorthand ``{"dtype": "float32" | "uint16", "shape": [H, W]}`` for keys under
    ``observation.depth.`` (float32 means metres, uint16 millimetres, as LeRobot's ``infer_depth_unit``).
    """
    dtype, shape = ft["dtype"], [int(s) for s in ft["shape"]]
    if len(shape) == 2:
        shape = [*shape, 1]
    if len(shape) != 3 or shape[2] != 1:
        raise DatasetError(
            f"depth feature {key!r} has shape {shape}; depth maps are [height, width] or [H, W, 1]."
        )
    info = dict(ft.get("info") or {})
    unit = info.get("depth_unit")
    if dtype in DEPTH_UNIT_DTYPES.values():
        unit = {v: k for k, v in DEPTH_UNIT_DTYPES.items()}[dtype]
    elif dtype == "video":
        raise DatasetError(
            f"depth feature {key!r} is declared as video; ember stores depth losslessly as images in parquet "
            "(LeRobot's raw depth layout). Declare it {'dtype': 'float32' (metres) or 'uint16' (mm), "
            "'shape': [H, W]}."
        )
    elif dtype != "image":
        raise DatasetError(
            f"depth feature {key!r} has dtype {dtype!r}; use float32 (metres) or uint16 (millimetres)."
        )
    if unit is not None and unit not in DEPTH_UNIT_DTYPES:
        raise DatasetError(f"depth feature {key!r}: depth_unit must be 'm' or 'mm', got {unit!r}.")
    info.pop("video.is_depth_map", None)
    info.update({"is_depth_map": True, "depth_unit": unit})
    names = ft.get("names")
    if names is None or len(names) != 3:
        names = ["height", "width", "channels"]
    return {"dtype": "image", "shape": shape, "names": list(names), "info": info}


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
        if key in LANGUAGE_COLUMNS or ft["dtype"] == LANGUAGE_DTYPE:
            if key not in LANGUAGE_COLUMNS or ft["dtype"] != LANGUAGE_DTYPE:
                raise DatasetError(
                    f"feature {key!r}: dtype 'language' is only for {list(LANGUAGE_COLUMNS)} and those two "
                    "columns must have dtype 'language' (use dtype 'string' for your own text columns)."
                )
            out[key] = {"dtype": LANGUAGE_DTYPE, "shape": [1], "names": None}
            continue
        if key.startswith(DEPTH_PREFIX) or is_depth(ft):
            out[key] = _normalize_depth(key, ft)
            continue
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
    """Keys that every frame passed to ``add_frame`` must carry (all but the default and language columns)."""
    return [k for k in features if k not in DEFAULT_FEATURES and k not in LANGUAGE_COLUMNS]


def language_keys(features: Mapping[str, Mapping]) -> list[str]:
    return [k for k in LANGUAGE_COLUMNS if k in features]


def depth_keys(features: Mapping[str, Mapping]) -> list[str]:
    """Camera features holding depth maps (``image`` + ``is_depth_map``)."""
    return [k for k, ft in features.items() if ft["dtype"] in VISUAL_DTYPES and is_depth(ft)]


def rgb_keys(features: Mapping[str, Mapping]) -> list[str]:
    """Camera features holding uint8 RGB frames (video or PNG images)."""
    return [k for k, ft in features.items() if ft["dtype"] in VISUAL_DTYPES and not is_depth(ft)]


def video_keys(features: Mapping[str, Mapping]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] == "video"]


def image_keys(features: Mapping[str, Mapping]) -> list[str]:
    """Keys of image features stored in parquet (PNG for RGB, TIFF for depth), not videos."""
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
    given = set(frame) - {"task"} - set(language_keys(features))
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
    if dtype in VISUAL_DTYPES and is_depth(ft):
        return _validate_depth(key, value, ft)
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


def _validate_depth(key: str, value: Any, ft: Mapping[str, Any]) -> np.ndarray:
    arr = np.asarray(value)
    shape = tuple(ft["shape"])
    if arr.shape not in (shape, shape[:2]):
        raise DatasetError(
            f"depth {key!r} has shape {arr.shape}; the feature declares {shape[:2]} (or {shape})."
        )
    unit = depth_unit(ft)
    if unit is None:  # LeRobot infers the unit from the first frame's dtype; the writer records it
        unit = "m" if arr.dtype.kind == "f" else "mm"
    if unit == "m":
        if arr.dtype.kind != "f":
            raise DatasetError(
                f"depth {key!r} is stored in metres (float32) but got {arr.dtype}; pass float depth in metres "
                "(e.g. depth_mm.astype(np.float32) / 1000)."
            )
        out = arr.astype(np.float32)
        if not np.all(np.isfinite(out)):
            raise DatasetError(
                f"depth {key!r} contains NaN or inf; write invalid pixels as 0.0 (LeRobot's convention for no return)."
            )
    else:
        if arr.dtype != np.uint16:
            if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 65535)):
                raise DatasetError(
                    f"depth {key!r} is stored in millimetres (uint16) but got {arr.dtype}; pass uint16 mm."
                )
        out = arr.astype(np.uint16)
    return np.ascontiguousarray(out.reshape(shape))


def check_fps(fps: Any) -> int:
    """LeRobot stores fps as a positive int; refuse anything else early."""
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or fps <= 0:
        if isinstance(fps, float) and fps > 0 and math.isclose(fps, round(fps)):
            return int(round(fps))
        raise DatasetError(f"fps must be a positive int (LeRobot stores an int), got {fps!r}.")
    return int(fps)
