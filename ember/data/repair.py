"""Bring a dataset whose recorder was killed back to exactly its committed episodes.

A crash inside ``save_episode`` never harms saved episodes, but it can leave the *uncommitted*
episode's rows at the end of a data shard, its frames at the end of an mp4 shard, a fresh
shard file, a metadata row, a task or stats one episode ahead of ``info.json``. ember's reader
ignores all of that; LeRobot's loader globs every parquet row and would trip over it. ``repair``
cuts every file back to what ``info.json`` commits (each step an atomic rewrite, so repair
itself can be interrupted and re-run) and recomputes stats.json if it is out of step.

When ``meta/episodes`` is missing or unreadable, it is rebuilt from what is on disk (see
:mod:`ember.data.rebuild`): the data shards say which rows belong to which episode, the video
shards hold the episodes back to back in the same order, and per-episode stats are recomputed.
Columns left by an interrupted ``add_columns`` (present in shards, not declared) are dropped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ember.data import layout, meta, stats
from ember.data.columns import to_numpy
from ember.data.dataset import EmberDataset
from ember.data.errors import DatasetError
from ember.data.features import depth_keys, depth_unit, numeric_keys, video_keys, visual_keys
from ember.data.video import probe_duration, truncate_shard


def repair(root: str | Path) -> list[str]:
    """Truncate ``root`` to the episodes committed in ``meta/info.json``; return what was changed."""
    root = Path(root)
    info = meta.read_info(root)
    total_eps, total_frames = int(info["total_episodes"]), int(info["total_frames"])
    actions: list[str] = []

    try:
        episodes = _repair_episode_meta(root, total_eps, actions)
    except (DatasetError, OSError, pa.ArrowException, KeyError) as exc:
        from ember.data.rebuild import rebuild_episode_meta

        actions.append(f"episode metadata unusable ({exc}); rebuilding it from the data and video files")
        episodes = rebuild_episode_meta(root, info, actions)
    _repair_data(root, episodes, total_frames, actions)
    _drop_undeclared(root, info, actions)
    for key in video_keys(info["features"]):
        _repair_videos(root, key, episodes, int(info["fps"]), actions)
    _repair_tasks(root, int(info.get("total_tasks", 0)), actions)
    for tmp in sorted(root.rglob(".*.tmp-*")):
        if layout.CACHE_DIR not in str(tmp.relative_to(root)):
            tmp.unlink()
            actions.append(f"removed temporary file {tmp}")
    _repair_stats(root, info, total_frames, actions)
    return actions


def _repair_episode_meta(root: Path, total: int, actions: list[str]) -> pa.Table:
    tables = []
    for path in sorted((root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet")):
        table = pq.read_table(path, page_checksum_verification=True)
        keep = pc.less(table.column("episode_index"), total)
        if not pc.all(keep).as_py():
            kept = table.filter(keep)
            if kept.num_rows == 0:
                path.unlink()
                actions.append(f"removed uncommitted episode metadata shard {path}")
                continue
            meta.write_parquet_row_groups(path, [kept])
            actions.append(f"dropped {table.num_rows - kept.num_rows} uncommitted row(s) from {path}")
            table = kept
        tables.append(table)
    if not tables:
        if total:
            raise DatasetError(f"{root}: no episode metadata survives; the dataset cannot be repaired.")
        return pa.table({"episode_index": pa.array([], pa.int64())})
    table = pa.concat_tables(tables, promote_options="default")
    if sorted(table.column("episode_index").to_pylist()) != list(range(total)):
        raise DatasetError(f"{root}: episode metadata does not cover episodes 0..{total - 1}; cannot repair.")
    return table


def _referenced(episodes: pa.Table, prefix: str) -> dict[tuple[int, int], list[int]]:
    out: dict[tuple[int, int], list[int]] = defaultdict(list)
    if episodes.num_rows == 0:
        return out
    chunk = episodes.column(f"{prefix}/chunk_index").to_pylist()
    file = episodes.column(f"{prefix}/file_index").to_pylist()
    for row in range(episodes.num_rows):
        out[(chunk[row], file[row])].append(row)
    return out


def _shard_key(path: Path) -> tuple[int, int]:
    return int(path.parent.name.split("-")[1]), int(path.stem.split("-")[1])


def _repair_data(root: Path, episodes: pa.Table, total_frames: int, actions: list[str]) -> None:
    refs = _referenced(episodes, "data")
    for path in sorted((root / layout.DATA_DIR).glob("chunk-*/file-*.parquet")):
        if _shard_key(path) not in refs:
            path.unlink()
            actions.append(f"removed uncommitted data shard {path}")
            continue
        md = pq.read_metadata(path)
        table = pq.read_table(path, page_checksum_verification=True)
        index = table.column("index").to_numpy()
        keep = int(np.searchsorted(index, total_frames))
        if keep == md.num_rows:
            continue
        table = table.slice(0, keep)
        ep = table.column("episode_index").to_numpy()
        starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
        parts = [table.slice(s, e - s) for s, e in zip(starts, [*starts[1:], len(ep)], strict=True)]
        meta.write_parquet_row_groups(path, parts)
        actions.append(f"dropped {md.num_rows - keep} uncommitted row(s) from {path}")


def _drop_undeclared(root: Path, info: dict, actions: list[str]) -> None:
    """Remove columns an interrupted ``add_columns`` wrote but never committed to info.json."""
    feats = info["features"]
    for path in sorted((root / layout.DATA_DIR).glob("chunk-*/file-*.parquet")):
        names = pq.read_schema(path).names
        extra = [c for c in names if c not in feats]
        if not extra:
            continue
        table = pq.read_table(path, page_checksum_verification=True).drop_columns(extra)
        ep = table.column("episode_index").to_numpy()
        starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if len(ep) else np.zeros(0, np.int64)
        parts = [table.slice(s, e - s) for s, e in zip(starts, [*starts[1:], len(ep)], strict=True)]
        meta.write_parquet_row_groups(path, parts or [table])
        actions.append(f"dropped undeclared column(s) {extra} from {path}")
    for path in sorted((root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet")):
        names = pq.read_schema(path).names
        extra = [c for c in names if c.startswith("stats/") and c.split("/")[1] not in feats]
        if extra:
            table = pq.read_table(path, page_checksum_verification=True).drop_columns(extra)
            meta.write_parquet_row_groups(path, [table])
            actions.append(f"dropped stats of undeclared feature(s) from {path}")
    current = meta.read_stats_json(root)
    if current and any(k not in feats for k in current):
        meta.write_stats(root, {k: v for k, v in current.items() if k in feats})
        actions.append("dropped stats of undeclared feature(s) from meta/stats.json")


def _repair_videos(root: Path, key: str, episodes: pa.Table, fps: int, actions: list[str]) -> None:
    refs = _referenced(episodes, f"videos/{key}")
    to_ts = episodes.column(f"videos/{key}/to_timestamp").to_pylist() if episodes.num_rows else []
    for path in sorted((root / layout.VIDEO_DIR / key).glob("chunk-*/file-*.mp4")):
        rows = refs.get(_shard_key(path))
        if rows is None:
            path.unlink()
            actions.append(f"removed uncommitted video shard {path}")
            continue
        end = max(to_ts[r] for r in rows)
        if probe_duration(path) > end + 0.5 / fps:
            truncate_shard(path, end, fps)
            actions.append(f"cut {path} back to {end:.3f}s")


def _repair_tasks(root: Path, total_tasks: int, actions: list[str]) -> None:
    path = root / layout.TASKS_PATH
    if not path.is_file():
        if total_tasks:
            from ember.data.rebuild import rebuild_tasks

            rebuild_tasks(root, total_tasks, actions)
        return
    tasks = meta.read_tasks(root)
    if len(tasks) > total_tasks:
        meta.write_tasks(root, tasks[:total_tasks])
        actions.append(f"dropped {len(tasks) - total_tasks} uncommitted task(s) from {path}")


def _numeric_match(table: pa.Table, feats: dict, current: dict) -> bool:
    """Do the numeric stats in stats.json describe the data (mean and min; see stats.numeric_stats_match)?"""
    return all(
        stats.numeric_stats_match(np.asarray(to_numpy(table.column(key), feats[key])), current[key])
        for key in numeric_keys(feats)
    )


def _repair_stats(root: Path, info: dict, total_frames: int, actions: list[str]) -> None:
    current = meta.read_stats_json(root) or {}
    count = current.get("index", {}).get("count")
    wanted = [
        k
        for k in info["features"]
        if k in numeric_keys(info["features"]) or k in visual_keys(info["features"])
    ]
    if total_frames == 0:
        return
    ds = EmberDataset(root)
    feats = info["features"]
    table = ds.frame_table()
    if (
        count == [total_frames]
        and all(k in current for k in wanted)
        and _numeric_match(table, feats, current)
    ):
        return
    out: stats.Stats = {}
    for key in feats:
        if key in numeric_keys(feats):
            out[key] = stats.numeric_stats(np.asarray(to_numpy(table.column(key), feats[key])))
        elif key in depth_keys(feats):
            acc = stats.DepthAccumulator(depth_unit(feats[key]) or "m")
            for ep in range(ds.num_episodes):
                acc.update(ds.frames(key, ep))
            out[key] = acc.stats()
        elif key in visual_keys(feats):
            hist = stats.PixelHistogram()
            for ep in range(ds.num_episodes):
                hist.update(ds.frames(key, ep))
            out[key] = hist.stats()
    meta.write_stats(root, stats.stats_to_json(out))
    actions.append(
        f"recomputed {root / layout.STATS_PATH} (had count {json.dumps(count)}; {total_frames} frames)"
    )
