"""Add per-frame columns (rewards, success, VLM scores) to a finished dataset without touching videos.

Why a dedicated path: labelers (``rewards/``, humans, success detectors) run long after recording.
Re-recording or re-encoding to add ``next.reward`` would be slow and lossy, so only the data
parquet shards are rewritten (each atomically, videos and images untouched), then the episode
metadata (per-episode stats), ``meta/stats.json`` and finally ``meta/info.json``, which is the
commit point: until it declares the new feature, readers ignore the extra column, and an
interrupted call is completed by running it again or undone by ``ember data repair``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ember.data import columns, layout, meta, stats
from ember.data.errors import DatasetError
from ember.data.features import DEFAULT_FEATURES, FLOAT_DTYPES, NUMERIC_DTYPES, normalize_features
from ember.data.language import LANGUAGE_COLUMNS

if TYPE_CHECKING:
    from ember.data.dataset import EmberDataset


def infer_feature(values: np.ndarray | list) -> dict[str, Any]:
    """A feature entry for per-frame ``values`` ``(N,)`` or ``(N, *shape)``: float -> float32, int -> int64."""
    if isinstance(values, list) and values and isinstance(values[0], str):
        return {"dtype": "string", "shape": [1], "names": None}
    arr = np.asarray(values)
    kind = arr.dtype.kind
    dtype = {"f": "float32", "b": "bool", "i": "int64", "u": "int64"}.get(kind)
    if dtype is None:
        raise DatasetError(
            f"cannot infer a feature for values of dtype {arr.dtype}; pass features= explicitly."
        )
    shape = list(arr.shape[1:]) or [1]
    return {"dtype": dtype, "shape": shape, "names": None}


def _per_frame(
    name: str, values: Any, ft: Mapping[str, Any], total: int, bounds: list[tuple[int, int]]
) -> Any:
    """Values for every committed frame in ``index`` order, checked against ``ft``."""
    if isinstance(values, Mapping):  # {episode_index: per-frame values of that episode}
        missing = [e for e in range(len(bounds)) if e not in values]
        if missing:
            raise DatasetError(f"column {name!r}: no values for episode(s) {missing[:10]}.")
        parts = []
        for e, (lo, hi) in enumerate(bounds):
            v = values[e]
            if len(v) != hi - lo:
                raise DatasetError(f"column {name!r}: episode {e} has {hi - lo} frames but {len(v)} values.")
            parts.append(v)
        values = (
            [x for p in parts for x in p]
            if ft["dtype"] == "string"
            else np.concatenate([np.asarray(p) for p in parts])
        )
    if len(values) != total:
        raise DatasetError(
            f"column {name!r} has {len(values)} values but the dataset has {total} frames; pass one value per "
            "frame in `index` order (or a dict {episode_index: values})."
        )
    if ft["dtype"] == "string":
        if not all(isinstance(v, str) for v in values):
            raise DatasetError(f"string column {name!r} must hold str values.")
        return list(values)
    arr = np.asarray(values)
    shape = list(ft["shape"])
    want = (total,) if shape == [1] else (total, *shape)
    if arr.shape not in (want, (total, *shape)):
        raise DatasetError(f"column {name!r} has shape {arr.shape}; feature shape {shape} needs {want}.")
    if arr.dtype.kind not in "biuf":
        raise DatasetError(f"column {name!r} must be numeric, got {arr.dtype}.")
    if ft["dtype"] in FLOAT_DTYPES and not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.reshape(total, -1)).all(axis=1))
        raise DatasetError(f"column {name!r} has NaN/inf at frame index {bad[:10].tolist()}.")
    if ft["dtype"] not in FLOAT_DTYPES and arr.dtype.kind == "f":
        raise DatasetError(f"column {name!r} is {ft['dtype']} but got float values; cast explicitly.")
    return arr.astype(np.bool_ if ft["dtype"] == "bool" else ft["dtype"]).reshape(want)


def add_columns(
    root: str | Path,
    values: Mapping[str, Any],
    features: Mapping[str, Mapping[str, Any]] | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Add (or with ``overwrite=True`` replace) per-frame columns; return what was written.

    ``values[name]``: one value per frame in global ``index`` order (``(N,)`` or ``(N, *shape)``), or
    ``{episode_index: values}``. ``features[name]``: ``{"dtype", "shape", "names"}``; inferred when
    omitted (float -> float32). Only numeric and string columns can be added; observations,
    cameras and the bookkeeping columns cannot be replaced.
    """
    from ember.data.dataset import EmberDataset

    root = Path(root)
    if not values:
        raise DatasetError("add_columns: nothing to add.")
    ds = EmberDataset(root)  # strict: refuse to label a dataset with unreadable files
    info = dict(ds.meta.info)
    feats: dict[str, dict] = {k: dict(v) for k, v in info["features"].items()}
    features = dict(features or {})
    new_feats: dict[str, dict] = {}
    for name, vals in values.items():
        if name in DEFAULT_FEATURES or name in LANGUAGE_COLUMNS or name == "task":
            raise DatasetError(
                f"column {name!r} is managed by ember (bookkeeping/language); it cannot be added."
            )
        sample = next(iter(vals.values())) if isinstance(vals, Mapping) else vals
        ft = dict(features.get(name) or infer_feature(sample))
        ft = normalize_features({name: ft}, use_videos=False)[name]
        if ft["dtype"] not in NUMERIC_DTYPES and ft["dtype"] != "string":
            raise DatasetError(
                f"column {name!r}: only numeric or string columns can be added, not {ft['dtype']}."
            )
        if name in feats:
            if not overwrite:
                raise DatasetError(
                    f"{root} already has a feature {name!r}; pass overwrite=True (CLI: --overwrite) to replace it."
                )
            if feats[name]["dtype"] not in NUMERIC_DTYPES and feats[name]["dtype"] != "string":
                raise DatasetError(
                    f"feature {name!r} is a {feats[name]['dtype']} feature and cannot be replaced."
                )
        new_feats[name] = ft

    total = ds.num_frames
    bounds = [ds.episode_bounds(e) for e in range(ds.num_episodes)]
    data = {name: _per_frame(name, values[name], ft, total, bounds) for name, ft in new_feats.items()}

    # the new feature order: existing user features, new ones, then language and bookkeeping columns
    tail = {k: v for k, v in feats.items() if k in DEFAULT_FEATURES or k in LANGUAGE_COLUMNS}
    merged: dict[str, dict] = {k: new_feats.get(k, v) for k, v in feats.items() if k not in tail}
    merged.update({k: v for k, v in new_feats.items() if k not in merged})
    merged.update(tail)
    schema = columns.schema_for(merged)

    def with_new_columns(part: pa.Table) -> pa.Table:
        index = part.column("index").to_numpy()
        arrays = []
        for field in schema:
            if field.name in data:
                col = data[field.name]
                picked = [col[i] for i in index] if isinstance(col, list) else col[index]
                arrays.append(columns.to_arrow(picked, merged[field.name]))
            else:
                arrays.append(part.column(field.name).combine_chunks().cast(field.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    done = rewrite_data_shards(ds, with_new_columns)
    numeric = {k: v for k, v in data.items() if new_feats[k]["dtype"] != "string"}
    _update_episode_stats(root, numeric, bounds, merged)
    stats_json = meta.read_stats_json(root) or {}
    for name, arr in numeric.items():
        stats_json[name] = stats.stats_to_json({name: stats.numeric_stats(arr)})[name]
    for name in data:
        if name not in numeric:
            stats_json.pop(name, None)
    meta.write_stats(root, {k: stats_json[k] for k in merged if k in stats_json})
    info["features"] = merged
    meta.write_info(root, info)  # commit point
    done.append(f"declared {sorted(new_feats)} in {root / layout.INFO_PATH}")
    return done


def rewrite_data_shards(ds: EmberDataset, rewrite: Callable[[pa.Table], pa.Table]) -> list[str]:
    """Rewrite every ``data/`` shard of the committed dataset ``ds``, one episode at a time: ``rewrite(rows of
    one episode)`` gives that episode's new rows (a new schema is fine, the same for every episode). Each shard is
    replaced atomically, one row group per episode, videos and images untouched; returns ``["rewrote <path>",
    ...]``.

    What :func:`add_columns` and ``ember.vla.motion_labels.label_motions`` share: a shard holding rows of an
    uncommitted episode (``index`` past ``ds.num_frames``) is refused, so ``ember data repair`` runs first. The
    caller commits by writing ``meta/info.json`` afterwards; until then readers keep the old features.
    """
    root = Path(ds.root)
    total = ds.num_frames
    rows = ds.meta.episodes.to_pydict()
    shards = sorted({(c, f) for c, f in zip(rows["data/chunk_index"], rows["data/file_index"], strict=True)})
    done: list[str] = []
    for chunk, file in shards:
        path = layout.data_file(root, chunk, file)
        table = pq.read_table(path, page_checksum_verification=True)
        index = table.column("index").to_numpy()
        if len(index) and index.max() >= total:
            raise DatasetError(
                f"{path} holds rows of an uncommitted episode (index >= {total}); run "
                f"`ember data repair {root}` first."
            )
        ep = table.column("episode_index").to_numpy()
        starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if len(ep) else np.zeros(0, np.int64)
        parts = [rewrite(table.slice(s, e - s)) for s, e in zip(starts, [*starts[1:], len(ep)], strict=True)]
        meta.write_parquet_row_groups(path, parts or [rewrite(table)])
        done.append(f"rewrote {path}")
    return done


def _update_episode_stats(
    root: Path, numeric: Mapping[str, np.ndarray], bounds: list[tuple[int, int]], features: Mapping[str, Any]
) -> None:
    """Add/replace ``stats/<name>/<stat>`` columns in every ``meta/episodes`` shard."""
    for path in sorted((root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet")):
        table = pq.read_table(path, page_checksum_verification=True)
        eps = table.column("episode_index").to_pylist()
        for name, arr in numeric.items():
            per_ep = [
                stats.flatten_stats({name: stats.numeric_stats(arr[bounds[e][0] : bounds[e][1]])})
                for e in eps
            ]
            for col in per_ep[0] if per_ep else []:
                values = pa.array([row[col] for row in per_ep])
                if col in table.column_names:
                    table = table.set_column(table.column_names.index(col), col, values)
                else:
                    # keep LeRobot's column order: stats before the meta/episodes/* index columns
                    pos = next(
                        (i for i, c in enumerate(table.column_names) if c.startswith("meta/episodes/")),
                        table.num_columns,
                    )
                    table = table.add_column(pos, col, values)
        meta.write_parquet_row_groups(path, [table])
