"""Write a small LeRobot v3 dataset with ember.data and read every part of it back (real files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from ember.data import DatasetError, DatasetWriter, EmberDataset, WindowDataset, compute_stats, to_batch
from ember.data.stats import QUANTILE_KEYS, QUANTILES, aggregate_stats
from ember.data.video import decode_call_count

CAM = "observation.images.front"
FPS = 10
LENGTHS = [12, 20, 5]
TASKS = ["push the cube", "lift the cube", "push the cube"]
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [9], "names": [f"j{i}" for i in range(9)]},
    "action": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "grip"]},
    "next.reward": {"dtype": "float32", "shape": [1], "names": None},
    "next.done": {"dtype": "bool", "shape": [1], "names": None},
    CAM: {"dtype": "video", "shape": [32, 32, 3], "names": ["height", "width", "channels"]},
}


def make_image(ep: int, t: int) -> np.ndarray:
    """Smooth images (codec-friendly) whose blue level encodes the frame, so order errors show."""
    y, x = np.mgrid[0:32, 0:32]
    img = np.empty((32, 32, 3), dtype=np.uint8)
    img[..., 0] = x * 6 + y * 2
    img[..., 1] = y * 5 + ep * 30
    img[..., 2] = 20 + t * 9 + ep * 3
    return img


def make_episode(ep: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(ep)
    return {
        "observation.state": rng.standard_normal((length, 9)).astype(np.float32),
        "action": rng.uniform(-1, 1, (length, 4)).astype(np.float32),
        "next.reward": rng.uniform(0, 1, length).astype(np.float32),
        "next.done": np.arange(length) == length - 1,
        CAM: np.stack([make_image(ep, t) for t in range(length)]),
    }


def write_dataset(root: Path, **kwargs) -> list[dict[str, np.ndarray]]:
    episodes = [make_episode(e, n) for e, n in enumerate(LENGTHS)]
    with DatasetWriter.create(root, fps=FPS, features=FEATURES, robot_type="panda", **kwargs) as writer:
        for e, data in enumerate(episodes):
            for t in range(LENGTHS[e]):
                frame = {k: v[t] for k, v in data.items()}
                frame["next.reward"] = float(frame["next.reward"])  # python scalars are accepted too
                writer.add_frame({**frame, "task": TASKS[e]})
            assert writer.save_episode() == e
    return episodes


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, list[dict[str, np.ndarray]]]:
    root = tmp_path_factory.mktemp("ds") / "pusht"
    return root, write_dataset(root)


@pytest.fixture(scope="module")
def ds(written) -> EmberDataset:
    return EmberDataset(written[0])


def test_numeric_columns_round_trip_exactly(ds, written):
    _, episodes = written
    assert ds.num_episodes == 3 and ds.num_frames == sum(LENGTHS) and ds.fps == FPS
    start = 0
    for e, expected in enumerate(episodes):
        got = ds.episode(e)
        for key in ("observation.state", "action", "next.reward", "next.done"):
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
        assert got["observation.state"].dtype == np.float32 and got["next.done"].dtype == np.bool_
        np.testing.assert_array_equal(got["frame_index"], np.arange(LENGTHS[e]))
        np.testing.assert_array_equal(got["index"], np.arange(start, start + LENGTHS[e]))
        np.testing.assert_array_equal(got["episode_index"], np.full(LENGTHS[e], e))
        np.testing.assert_allclose(got["timestamp"], np.arange(LENGTHS[e]) / FPS, rtol=0, atol=1e-6)
        assert list(got["task"]) == [TASKS[e]] * LENGTHS[e]
        start += LENGTHS[e]


def test_video_frames_within_codec_tolerance(ds, written):
    _, episodes = written
    for e, expected in enumerate(episodes):
        frames = ds.episode(e)[CAM]
        assert frames.shape == (LENGTHS[e], 32, 32, 3) and frames.dtype == np.uint8
        err = np.abs(frames.astype(np.int16) - expected[CAM].astype(np.int16))
        assert err.mean() < 3.0, f"episode {e}: mean abs error {err.mean():.2f}"
        # every decoded frame is closest to the frame it should be (no shift at shard offsets)
        dist = np.abs(frames[:, None].astype(np.int16) - expected[CAM][None].astype(np.int16)).mean(
            axis=(2, 3, 4)
        )
        np.testing.assert_array_equal(dist.argmin(axis=1), np.arange(LENGTHS[e]))


def test_global_stats_equal_numpy(ds, written):
    _, episodes = written
    stats = json.loads((ds.root / "meta/stats.json").read_text())
    for key in ("observation.state", "action", "next.reward", "next.done"):
        x = np.concatenate([ep[key] for ep in episodes]).astype(np.float64)
        x = x.reshape(len(x), -1)
        np.testing.assert_array_equal(stats[key]["min"], x.min(0))
        np.testing.assert_array_equal(stats[key]["max"], x.max(0))
        np.testing.assert_array_equal(stats[key]["mean"], x.mean(0))
        np.testing.assert_array_equal(stats[key]["std"], x.std(0))
        assert stats[key]["count"] == [len(x)]
        for q_key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
            np.testing.assert_array_equal(
                stats[key][q_key], np.quantile(x, q, axis=0), err_msg=f"{key} {q_key}"
            )
    # images: per channel over all pixels in [0, 1], shape (3, 1, 1); count = frames
    pixels = np.concatenate([ep[CAM] for ep in episodes]).reshape(-1, 3) / 255.0
    img = {k: np.asarray(v) for k, v in stats[CAM].items()}
    assert img["mean"].shape == (3, 1, 1) and img["count"].tolist() == [sum(LENGTHS)]
    np.testing.assert_allclose(img["mean"].ravel(), pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(img["std"].ravel(), pixels.std(0), rtol=1e-10)
    np.testing.assert_allclose(img["min"].ravel(), pixels.min(0))
    np.testing.assert_allclose(img["max"].ravel(), pixels.max(0))
    for q_key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
        np.testing.assert_allclose(img[q_key].ravel(), np.quantile(pixels, q, axis=0), rtol=1e-12)
    # default columns get stats too (as in LeRobot), and the reader returns numpy arrays
    assert set(ds.meta.stats) == set(ds.features)
    assert isinstance(ds.meta.stats["action"]["mean"], np.ndarray)


def test_episode_stats_and_aggregation(ds, written):
    _, episodes = written
    table = ds.meta.episodes
    for e, ep in enumerate(episodes):
        x = ep["action"].astype(np.float64)
        assert table["stats/action/mean"][e].as_py() == x.mean(0).tolist()
        assert table["stats/action/q50"][e].as_py() == np.quantile(x, 0.5, axis=0).tolist()
        assert table["stats/next.reward/count"][e].as_py() == [LENGTHS[e]]
    per_episode = [compute_stats({"action": ep["action"]}, ds.features) for ep in episodes]
    merged = aggregate_stats(per_episode)["action"]
    x = np.concatenate([ep["action"] for ep in episodes]).astype(np.float64)
    np.testing.assert_allclose(merged["mean"], x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged["std"], x.std(0), rtol=1e-10)
    np.testing.assert_array_equal(merged["min"], x.min(0))
    assert merged["count"].tolist() == [len(x)]


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


def _expected_window(episodes, item_index, n_obs, horizon):
    starts = np.cumsum([0, *LENGTHS])
    e = int(np.searchsorted(starts, item_index, side="right") - 1)
    t = item_index - starts[e]
    obs = np.clip(np.arange(t - n_obs + 1, t + 1), 0, LENGTHS[e] - 1)
    raw = np.arange(horizon) + t - n_obs + 1
    act = np.clip(raw, 0, LENGTHS[e] - 1)
    return e, obs, act, (raw < 0) | (raw >= LENGTHS[e])


def test_window_dataset_shapes_padding_and_episode_boundaries(ds, written, tmp_path):
    _, episodes = written
    n_obs, horizon = 2, 8
    wd = WindowDataset(ds, n_obs, horizon, ["observation.state", CAM], cache_dir=tmp_path / "cache")
    assert len(wd) == sum(LENGTHS) and wd.image_keys == [CAM]
    decoded = {e: ds.episode(e)[CAM] for e in range(3)}
    for i in range(len(wd)):
        item = wd[i]
        e, obs, act, pad = _expected_window(episodes, i, n_obs, horizon)
        assert (
            item["observation.state"].shape == (n_obs, 9) and item["observation.state"].dtype == torch.float32
        )
        assert item[CAM].shape == (n_obs, 3, 32, 32) and item[CAM].dtype == torch.float32
        assert item["action"].shape == (horizon, 4) and item["action_is_pad"].dtype == torch.bool
        np.testing.assert_array_equal(
            item["observation.state"].numpy(), episodes[e]["observation.state"][obs]
        )
        np.testing.assert_array_equal(item["action"].numpy(), episodes[e]["action"][act])  # never crosses
        np.testing.assert_array_equal(item["action_is_pad"].numpy(), pad)
        expected_img = decoded[e][obs].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        np.testing.assert_allclose(item[CAM].numpy(), expected_img, atol=1e-7)
        assert 0.0 <= item[CAM].min() and item[CAM].max() <= 1.0
        assert item["task"] == TASKS[e]
    # first frame of episode 1: obs repeats its first frame, first action step is padding
    first = wd[LENGTHS[0]]
    assert torch.equal(first["observation.state"][0], first["observation.state"][1])
    assert first["action_is_pad"].tolist() == [True] + [False] * 7
    # episode 2 is shorter than the horizon: the tail is padded with its last action
    last = wd[len(wd) - 1]
    assert last["action_is_pad"].tolist() == [False, False] + [True] * 6
    assert torch.equal(last["action"][-1], torch.from_numpy(episodes[2]["action"][-1]))


def test_window_cache_is_created_and_reused(ds, tmp_path):
    cache = tmp_path / "cache"
    before = decode_call_count()
    wd = WindowDataset(ds, 2, 4, ["observation.state", CAM], cache_dir=cache)
    first = [wd[i][CAM] for i in range(len(wd))]
    assert decode_call_count() - before == ds.num_episodes  # each episode decoded exactly once
    files = sorted(cache.rglob("*.u8"))
    assert len(files) == ds.num_episodes
    mtimes = [f.stat().st_mtime_ns for f in files]

    again = WindowDataset(ds, 2, 4, ["observation.state", CAM], cache_dir=cache)  # "next epoch / process"
    mid = decode_call_count()
    second = [again[i][CAM] for i in range(len(again))]
    assert decode_call_count() == mid, "second pass decoded video again"
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert [f.stat().st_mtime_ns for f in files] == mtimes

    loader = torch.utils.data.DataLoader(again, batch_size=8, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["task"]) for b in batches) == len(again)
    assert batches[0][CAM].shape == (8, 2, 3, 32, 32)
    torch.testing.assert_close(batches[0][CAM][3], second[3])
    assert [f.stat().st_mtime_ns for f in sorted(cache.rglob("*.u8"))] == mtimes  # workers hit the cache


def test_default_cache_lives_under_root(ds):
    wd = WindowDataset(ds, 1, 2, [CAM])
    wd.warm_cache()
    assert len(list((ds.root / ".cache").rglob("*.u8"))) == ds.num_episodes
    assert not (ds.root / ".cache" / "huggingface").exists()


def test_to_batch_single_and_vector_obs():
    single = {"observation.state": np.arange(9, dtype=np.float64), CAM: make_image(0, 0), "task": "push"}
    batch = to_batch(single)
    assert batch["observation.state"].shape == (1, 9) and batch["observation.state"].dtype == torch.float32
    assert batch[CAM].shape == (1, 3, 32, 32) and batch[CAM].dtype == torch.float32
    assert float(batch[CAM].max()) <= 1.0 and batch["task"] == ["push"]
    torch.testing.assert_close(batch[CAM][0, 0], torch.from_numpy(make_image(0, 0)[..., 0]).float() / 255)
    vec = {
        "observation.state": np.zeros((4, 9), np.float32),
        CAM: np.stack([make_image(0, t) for t in range(4)]),
        "observation.depth.front": np.ones((4, 32, 32), np.float32),
        "task": ("a", "b", "c", "d"),
    }
    out = to_batch(vec)
    assert out[CAM].shape == (4, 3, 32, 32) and out["observation.depth.front"].shape == (4, 1, 32, 32)
    assert out["task"] == ["a", "b", "c", "d"]
    with pytest.raises(DatasetError, match="batch"):
        to_batch({**vec, "task": ["a"]})


def test_image_features_without_video_round_trip_exactly(tmp_path):
    feats = {"observation.state": FEATURES["observation.state"], "observation.images.wrist": {
        "dtype": "image", "shape": [16, 16, 3], "names": None}}  # fmt: skip
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    with DatasetWriter.create(tmp_path / "img", fps=5, features=feats, use_videos=False) as w:
        for t in range(6):
            w.add_frame(
                {"observation.state": np.zeros(9), "observation.images.wrist": imgs[t], "task": "look"}
            )
        w.save_episode()
    ds = EmberDataset(tmp_path / "img")
    assert ds.meta.info["video_path"] is None
    np.testing.assert_array_equal(ds.episode(0)["observation.images.wrist"], imgs)
    field = pq.read_schema(tmp_path / "img/data/chunk-000/file-000.parquet").field("observation.images.wrist")
    assert field.type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    wd = WindowDataset(ds, 2, 3, ["observation.images.wrist"], "observation.state", cache_dir=tmp_path / "c")
    np.testing.assert_allclose(
        wd[5]["observation.images.wrist"][1].numpy(), imgs[5].transpose(2, 0, 1) / 255.0
    )


def test_small_size_limits_roll_files_and_chunks(tmp_path):
    root = tmp_path / "rolled"
    episodes = write_dataset(root, data_files_size_in_mb=0.001, video_files_size_in_mb=0.001, chunks_size=2)
    assert (root / "data/chunk-001/file-000.parquet").is_file()
    assert (root / f"videos/{CAM}/chunk-001/file-000.mp4").is_file()
    ds = EmberDataset(root)
    d = ds.meta.episodes.to_pydict()
    assert [(c, f) for c, f in zip(d["data/chunk_index"], d["data/file_index"], strict=True)] == [
        (0, 0),
        (0, 1),
        (1, 0),
    ]
    assert d[f"videos/{CAM}/from_timestamp"] == [0.0, 0.0, 0.0]
    for e, expected in enumerate(episodes):
        got = ds.episode(e)
        np.testing.assert_array_equal(got["action"], expected["action"])
        assert np.abs(got[CAM].astype(int) - expected[CAM]).mean() < 3.0


def test_frame_validation_names_the_key(tmp_path):
    with DatasetWriter.create(tmp_path / "v", fps=FPS, features=FEATURES) as w:
        good = {k: v[0] for k, v in make_episode(0, 1).items()} | {"task": "t"}
        w.add_frame(good)
        bad_state = good["observation.state"].copy()
        bad_state[3] = np.nan
        with pytest.raises(DatasetError, match=r"'observation.state'.*NaN"):
            w.add_frame({**good, "observation.state": bad_state})
        with pytest.raises(DatasetError, match=r"'action' has shape \(3,\)"):
            w.add_frame({**good, "action": np.zeros(3)})
        with pytest.raises(DatasetError, match="missing.*next.reward"):
            w.add_frame({k: v for k, v in good.items() if k != "next.reward"})
        with pytest.raises(DatasetError, match=f"{CAM}.*uint8"):
            w.add_frame({**good, CAM: good[CAM].astype(np.float32)})
        with pytest.raises(DatasetError, match="task"):
            w.add_frame({k: v for k, v in good.items() if k != "task"})
        assert w.episode_length == 1  # rejected frames leave the buffer untouched
        w.clear_episode()
        assert w.episode_length == 0
        with pytest.raises(DatasetError, match="no frames"):
            w.save_episode()
    w.finalize()  # idempotent
    with pytest.raises(DatasetError, match="finalized"):
        w.add_frame(good)
    with pytest.raises(DatasetError, match="not empty"):
        DatasetWriter.create(tmp_path / "v", fps=FPS, features=FEATURES)
    with pytest.raises(DatasetError, match="even"):
        DatasetWriter.create(
            tmp_path / "odd", fps=FPS, features={CAM: {"dtype": "video", "shape": [31, 32, 3]}}
        )
    with pytest.raises(DatasetError, match="reserved"):
        DatasetWriter.create(tmp_path / "r", fps=FPS, features={"index": {"dtype": "int64", "shape": [1]}})
