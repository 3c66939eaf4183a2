"""Feature values <-> Arrow columns, in the parquet layout LeRobot's loader casts to.

LeRobot builds ``datasets.Features`` from ``info.json`` and casts the parquet columns to them:
shape ``[1]`` -> ``Value`` (a scalar column), ``[n]`` -> ``Sequence(length=n)`` (a fixed-size
list), 2-D+ -> ``ArrayND`` (nested lists) and ``image`` -> ``Image`` (``struct<bytes, path>``
holding PNG bytes). Writing exactly those Arrow types keeps the cast a no-op.

Depth maps are ``image`` features too (``is_depth_map``), held as uncompressed TIFF bytes (PIL mode
``F`` for float32 metres, ``I;16`` for uint16 millimetres), which is how LeRobot stores raw depth
frames: lossless, and ``datasets.Image`` decodes them. Language columns are lists of structs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ember.data import language
from ember.data.errors import DatasetError
from ember.data.features import is_depth

IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def arrow_type(ft: Mapping[str, Any]) -> pa.DataType:
    """The Arrow type of one feature's column."""
    dtype, shape = ft["dtype"], list(ft["shape"])
    if dtype == "image":
        return IMAGE_STRUCT
    if dtype == "string":
        return pa.string()
    if dtype == language.LANGUAGE_DTYPE:
        raise DatasetError("language columns have no generic Arrow type; use schema_for(features).")
    base = pa.bool_() if dtype == "bool" else pa.from_numpy_dtype(np.dtype(dtype))
    if shape == [1]:
        return base
    out = base
    for dim in reversed(shape):
        out = pa.list_(out, dim)
    return out


def column_arrow_type(key: str, ft: Mapping[str, Any]) -> pa.DataType:
    """Arrow type of column ``key`` (language columns depend on the key, not only the dtype)."""
    if ft["dtype"] == language.LANGUAGE_DTYPE:
        return language.column_type(key)
    return arrow_type(ft)


def schema_for(features: Mapping[str, Mapping[str, Any]]) -> pa.Schema:
    """Schema of the ``data/`` parquet shards: every non-video feature, in feature order."""
    return pa.schema([(k, column_arrow_type(k, ft)) for k, ft in features.items() if ft["dtype"] != "video"])


def to_arrow(values: Any, ft: Mapping[str, Any]) -> pa.Array:
    """Build one column from a stacked episode array ``(T, *shape)`` (or a list of str / images)."""
    dtype, shape = ft["dtype"], list(ft["shape"])
    if dtype == "string":
        return pa.array(list(values), type=pa.string())
    if dtype == "image":
        encode = encode_tiff if is_depth(ft) else encode_png
        return pa.array([{"bytes": encode(img), "path": None} for img in values], type=IMAGE_STRUCT)
    arr = np.asarray(values)
    n = arr.shape[0]
    base_type = arrow_type({"dtype": dtype, "shape": [1]})
    flat = pa.array(np.ascontiguousarray(arr).reshape(-1), type=base_type)
    if shape == [1]:
        return flat
    out: pa.Array = flat
    for dim in reversed(shape):
        out = pa.FixedSizeListArray.from_arrays(out, dim)
    assert len(out) == n
    return out


def language_to_arrow(key: str, values: Sequence[Any]) -> pa.Array:
    """A language column from per-frame lists of row dicts (see :mod:`ember.data.language`)."""
    return language.to_arrow(key, values)


def to_table(arrays: Mapping[str, Any], features: Mapping[str, Mapping[str, Any]]) -> pa.Table:
    """One episode's ``data/`` rows: every column of :func:`schema_for` built from ``arrays``."""
    schema = schema_for(features)
    return pa.Table.from_arrays(
        [
            language_to_arrow(name, arrays[name])
            if name in language.LANGUAGE_COLUMNS
            else to_arrow(arrays[name], features[name])
            for name in schema.names
        ],
        schema=schema,
    )


def to_numpy(col: pa.ChunkedArray | pa.Array, ft: Mapping[str, Any]) -> Any:
    """Inverse of :func:`to_arrow`: ``(T, *shape)`` numpy (``(T,)`` for shape ``[1]``), list of str,
    ``(T, H, W, 3)`` uint8 for images, ``(T, H, W, 1)`` float32/uint16 for depth, and per-frame lists of
    row dicts for language columns."""
    dtype, shape = ft["dtype"], list(ft["shape"])
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(col)
    if dtype in ("string", language.LANGUAGE_DTYPE):
        return col.to_pylist()
    if dtype == "image":
        return _decode_depth(col, ft) if is_depth(ft) else _decode_images(col, shape)
    if col.null_count:
        raise DatasetError(f"column of dtype {dtype} has {col.null_count} null values")
    flat = col
    while (
        pa.types.is_list(flat.type)
        or pa.types.is_fixed_size_list(flat.type)
        or pa.types.is_large_list(flat.type)
    ):
        flat = pc.list_flatten(flat)
    np_dtype = np.bool_ if dtype == "bool" else np.dtype(dtype)
    out = flat.to_numpy(zero_copy_only=False).astype(np_dtype, copy=False)
    if shape == [1]:
        return out.reshape(n)
    return out.reshape(n, *shape)


def encode_png(img: np.ndarray) -> bytes:
    from PIL import Image  # lazy: only image (not video) features need Pillow

    buf = io.BytesIO()
    Image.fromarray(np.asarray(img, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encode_tiff(depth: np.ndarray) -> bytes:
    """Uncompressed single-channel TIFF (PIL ``F`` / ``I;16``): lossless, as LeRobot's raw depth frames."""
    from PIL import Image

    arr = np.ascontiguousarray(np.asarray(depth).reshape(np.shape(depth)[:2]))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="TIFF", compression="raw")
    return buf.getvalue()


def _decode_depth(col: pa.Array, ft: Mapping[str, Any]) -> np.ndarray:
    from PIL import Image

    unit = (ft.get("info") or {}).get("depth_unit") or "m"
    dtype = np.float32 if unit == "m" else np.uint16
    h, w = ft["shape"][:2]
    out = np.empty((len(col), h, w, 1), dtype=dtype)
    for i, item in enumerate(col.field("bytes").to_pylist()):
        if item is None:
            raise DatasetError(f"depth image {i} of the column has no bytes")
        arr = np.asarray(Image.open(io.BytesIO(item)))
        if arr.shape != (h, w):
            raise DatasetError(f"depth image {i} is {arr.shape}, the feature declares {(h, w)}")
        out[i, ..., 0] = arr.astype(dtype, copy=False)
    return out


def _decode_images(col: pa.Array, shape: Sequence[int]) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(col), *shape), dtype=np.uint8)
    for i, item in enumerate(col.field("bytes").to_pylist()):
        if item is None:
            raise DatasetError(f"image {i} of the column has no bytes")
        out[i] = np.asarray(Image.open(io.BytesIO(item)).convert("RGB"))
    return out
