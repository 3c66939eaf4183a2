"""Rebuild ``meta/episodes`` (and ``meta/tasks.parquet``) from the data and video files on disk.

Why this works: every data row carries its ``episode_index``, ``index`` and ``task_index``, so
the data shards alone say where each episode's rows are. Video shards hold episodes back to back
in episode order (the writer appends each episode at the shard's end and rolls to the next file
when full), so walking the shards in order with each episode's length recovers every
``from_timestamp``/``to_timestamp``. Only ``info.json`` (the commit point and the feature list)
must survive. Per-episode stats are recomputed from the data.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ember.data import columns, layout, meta, stats
from ember.data.errors import DatasetError
from ember.data.features import depth_keys, numeric_keys, rgb_keys, video_keys
from ember.data.video import decode_episode, probe_duration


def _shard_key(path: Path) -> tuple[int, int]:
    return int(path.parent.name.split("-")[1]), int(path.stem.split("-")[1])


def _scan_data(root: Path, total_eps: int, actions: list[str]) -> OrderedDict[int, dict[str, Any]]:
    """``episode -> {chunk, file, from, to, task_indices (first-seen order), table}`` for committed episodes."""
    found: OrderedDict[int, dict[str, Any]] = OrderedDict()
    for path in sorted((root / layout.DATA_DIR).glob("chunk-*/file-*.parquet"), key=_shard_key):
        try:
            table = pq.read_table(path, page_checksum_verification=True)
        except (OSError, pa.ArrowException) as exc:
            actions.append(f"cannot read {path} ({exc}); its episodes are lost")
            continue
        ep = table.column("episode_index").to_numpy()
        index = table.column("index").to_numpy()
        for e in np.unique(ep):
            if e >= total_eps:
                continue
            rows = np.flatnonzero(ep == e)
            sub = table.take(rows)
            found[int(e)] = {
                "chunk": _shard_key(path)[0],
                "file": _shard_key(path)[1],
                "from": int(index[rows].min()),
                "to": int(index[rows].max()) + 1,
                "task_indices": list(dict.fromkeys(sub.column("task_index").to_pylist())),
                "table": sub,
            }
    missing = sorted(set(range(total_eps)) - set(found))
    if missing:
        raise DatasetError(
            f"{root}: the data rows of episode(s) {missing[:20]} are gone, so the dataset cannot be rebuilt; "
            "restore the data files from a copy."
        )
    return OrderedDict(sorted(found.items()))


def _place_videos(root: Path, key: str, lengths: list[int], fps: int) -> list[dict[str, Any]]:
    """Walk the shards of ``key`` in order, assigning consecutive episodes to each shard."""
    shards = sorted((root / layout.VIDEO_DIR / key).glob("chunk-*/file-*.mp4"), key=_shard_key)
    if not shards and lengths:
        raise DatasetError(f"{root}: no video files for {key!r}; cannot rebuild its episode metadata.")
    out: list[dict[str, Any]] = []
    s, used = 0, 0
    frames_in = [round(probe_duration(p) * fps) for p in shards]
    for length in lengths:
        while s < len(shards) and used + length > frames_in[s]:
            s, used = s + 1, 0
        if s >= len(shards):
            raise DatasetError(
                f"{root}: the video files of {key!r} hold fewer frames than the episodes need; cannot rebuild."
            )
        chunk, file = _shard_key(shards[s])
        out.append({"chunk": chunk, "file": file, "from": used / fps, "to": (used + length) / fps})
        used += length
    return out


def rebuild_tasks(root: Path, total_tasks: int, actions: list[str]) -> list[str]:
    """Recreate ``tasks.parquet`` from the ``tasks`` lists of meta/episodes, else name them ``task <i>``."""
    names: dict[int, str] = {}
    try:
        for path in sorted((root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet")):
            eps = pq.read_table(path, columns=["episode_index", "tasks", "dataset_from_index", "data/chunk_index",
                                               "data/file_index", "dataset_to_index"]).to_pylist()  # fmt: skip
            for row in eps:
                data = pq.read_table(layout.data_file(root, row["data/chunk_index"], row["data/file_index"]),
                                     columns=["index", "task_index"])  # fmt: skip
                index = data.column("index").to_numpy()
                sel = (index >= row["dataset_from_index"]) & (index < row["dataset_to_index"])
                order = list(dict.fromkeys(data.column("task_index").to_numpy()[sel].tolist()))
                for t, name in zip(order, row["tasks"] or [], strict=False):
                    names.setdefault(int(t), name)
    except (OSError, pa.ArrowException, KeyError):
        pass
    tasks = [names.get(i, f"task {i}") for i in range(total_tasks)]
    meta.write_tasks(root, tasks)
    lost = [i for i in range(total_tasks) if i not in names]
    actions.append(
        f"rebuilt {root / layout.TASKS_PATH}" + (f"; the text of task(s) {lost} was lost" if lost else "")
    )
    return tasks


def rebuild_episode_meta(root: Path, info: dict[str, Any], actions: list[str]) -> pa.Table:
    """Write fresh ``meta/episodes`` shards for the committed episodes; return the new table."""
    total = int(info["total_episodes"])
    fps = int(info["fps"])
    feats = info["features"]
    data = _scan_data(root, total, actions)
    try:
        tasks = meta.read_tasks(root)
    except DatasetError:
        tasks = rebuild_tasks(root, int(info.get("total_tasks", 0)), actions)
    lengths = [d["to"] - d["from"] for d in data.values()]
    placed = {key: _place_videos(root, key, lengths, fps) for key in video_keys(feats)}
    rows = []
    for e, d in data.items():
        row: dict[str, Any] = {
            "episode_index": e,
            "tasks": [tasks[t] if t < len(tasks) else f"task {t}" for t in d["task_indices"]],
            "length": d["to"] - d["from"],
            "data/chunk_index": d["chunk"],
            "data/file_index": d["file"],
            "dataset_from_index": d["from"],
            "dataset_to_index": d["to"],
        }
        for key, where in placed.items():
            w = where[e]
            row.update({f"videos/{key}/chunk_index": w["chunk"], f"videos/{key}/file_index": w["file"],
                        f"videos/{key}/from_timestamp": w["from"], f"videos/{key}/to_timestamp": w["to"]})  # fmt: skip
        ep_stats = _episode_stats(root, feats, d, placed, e, fps)
        row.update(stats.flatten_stats({k: ep_stats[k] for k in feats if k in ep_stats}))
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        rows.append(row)
    table = pa.Table.from_pylist(rows) if rows else pa.table({"episode_index": pa.array([], pa.int64())})
    target = layout.episodes_file(root, 0, 0)
    for old in sorted((root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet")):
        if old != target:
            old.unlink()
    meta.write_parquet_row_groups(target, [table])
    actions.append(f"rebuilt episode metadata for {len(rows)} episode(s) in {target}")
    meta.write_stats(root, {})  # force the stats recomputation that follows
    return table


def _episode_stats(
    root: Path, feats: dict, d: dict[str, Any], placed: dict[str, list[dict]], e: int, fps: int
) -> stats.Stats:
    table: pa.Table = d["table"]
    arrays = {k: columns.to_numpy(table.column(k), feats[k]) for k in numeric_keys(feats)}
    out = stats.compute_stats(arrays, feats)
    length = d["to"] - d["from"]
    for key in rgb_keys(feats) + depth_keys(feats):
        if key in placed:
            w = placed[key][e]
            frames = decode_episode(
                layout.video_file(root, key, w["chunk"], w["file"]), w["from"], length, fps
            )
        else:
            frames = columns.to_numpy(table.column(key), feats[key])
        out[key] = stats.compute_stats({key: frames}, feats)[key]
    return out
