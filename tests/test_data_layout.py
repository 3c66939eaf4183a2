"""The files of a dataset written by ember.data are LeRobot v3's: info.json, tasks.parquet, the episodes and data
parquet shards (real files)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import roundtrip_dataset
from roundtrip_dataset import CAM, FEATURES, FPS, LENGTHS

from ember.data.stats import QUANTILE_KEYS

written, ds = (
    roundtrip_dataset.written,
    roundtrip_dataset.ds,
)  # module-scoped fixtures: one dataset per module


def test_info_json_matches_lerobot_v3(ds):
    info = json.loads((ds.root / "meta/info.json").read_text())
    assert set(info) == {
        "codebase_version", "fps", "features", "total_episodes", "total_frames", "total_tasks",
        "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "data_path", "video_path",
        "robot_type", "splits",
    }  # fmt: skip
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS and info["robot_type"] == "panda"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(LENGTHS), 2)
    assert (info["chunks_size"], info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (
        1000,
        100,
        200,
    )
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["splits"] == {"train": "0:3"}
    feats = info["features"]
    assert list(feats) == [*FEATURES, "timestamp", "frame_index", "episode_index", "index", "task_index"]
    for key, ft in FEATURES.items():
        assert feats[key]["dtype"] == ft["dtype"] and feats[key]["shape"] == ft["shape"]
        assert feats[key]["names"] == ft["names"]
    assert feats["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}
    for key in ("frame_index", "episode_index", "index", "task_index"):
        assert feats[key] == {"dtype": "int64", "shape": [1], "names": None}
    vinfo = feats[CAM]["info"]
    assert vinfo["video.codec"] in {"h264", "av1"} and vinfo["video.pix_fmt"] == "yuv420p"
    assert (vinfo["video.height"], vinfo["video.width"], vinfo["video.fps"], vinfo["video.channels"]) == (
        32,
        32,
        FPS,
        3,
    )
    assert vinfo["has_audio"] is False and vinfo["is_depth_map"] is False
    assert (ds.root / "data/chunk-000/file-000.parquet").is_file()
    assert (ds.root / f"videos/{CAM}/chunk-000/file-000.mp4").is_file()
    assert (ds.root / "meta/episodes/chunk-000/file-000.parquet").is_file()


def test_tasks_parquet_is_pandas_indexed_by_task(ds):
    table = pq.read_table(ds.root / "meta/tasks.parquet")
    assert table.column_names == ["task_index", "task"]
    assert table.to_pydict() == {"task_index": [0, 1], "task": ["push the cube", "lift the cube"]}
    pandas_meta = json.loads(table.schema.metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["task"]
    assert ds.meta.tasks == ["push the cube", "lift the cube"]


def test_episodes_parquet_columns(ds):
    table = pq.read_table(ds.root / "meta/episodes/chunk-000/file-000.parquet")
    cols = table.column_names
    required = [
        "episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
        "dataset_to_index", f"videos/{CAM}/chunk_index", f"videos/{CAM}/file_index",
        f"videos/{CAM}/from_timestamp", f"videos/{CAM}/to_timestamp", "meta/episodes/chunk_index",
        "meta/episodes/file_index",
    ]  # fmt: skip
    assert cols[: len(required) - 2] == required[:-2] and cols[-2:] == required[-2:]
    stat_cols = {c for c in cols if c.startswith("stats/")}
    assert stat_cols == {f"stats/{k}/{s}" for k in ds.features for s in (*QUANTILE_KEYS, "min", "max", "mean", "std", "count")}  # fmt: skip
    d = table.to_pydict()
    assert d["episode_index"] == [0, 1, 2] and d["length"] == LENGTHS
    assert d["tasks"] == [["push the cube"], ["lift the cube"], ["push the cube"]]
    ends = np.cumsum(LENGTHS).tolist()
    assert d["dataset_from_index"] == [0, *ends[:-1]] and d["dataset_to_index"] == ends
    assert d[f"videos/{CAM}/from_timestamp"] == [0.0, 1.2, 3.2]
    assert d[f"videos/{CAM}/to_timestamp"] == [1.2, 3.2, 3.7]
    assert pa.types.is_list(table.schema.field(f"stats/{CAM}/mean").type)
    assert np.asarray(d[f"stats/{CAM}/mean"][0]).shape == (3, 1, 1)


def test_data_parquet_schema_and_row_groups(ds):
    f = pq.ParquetFile(ds.root / "data/chunk-000/file-000.parquet")
    schema = f.schema_arrow
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 9)
    assert schema.field("action").type == pa.list_(pa.float32(), 4)
    assert schema.field("next.reward").type == pa.float32()
    assert schema.field("next.done").type == pa.bool_()
    assert schema.field("timestamp").type == pa.float32()
    assert schema.field("index").type == pa.int64() and schema.field("task_index").type == pa.int64()
    assert CAM not in schema.names
    assert f.metadata.num_row_groups == 3  # one per episode, like LeRobot
    assert ds.frame_table().num_rows == sum(LENGTHS)
