"""Write a small LeRobot v3 dataset with ember.data and read it back: columns, video frames, stats, image
features, shard roll-over and frame validation (real files). Its layout on disk and the training windows have
their own files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import roundtrip_dataset
from roundtrip_dataset import CAM, FEATURES, FPS, LENGTHS, TASKS, make_episode, write_dataset

from ember.data import DatasetError, DatasetWriter, EmberDataset, WindowDataset, compute_stats
from ember.data.stats import QUANTILE_KEYS, QUANTILES, aggregate_stats

written, ds = (
    roundtrip_dataset.written,
    roundtrip_dataset.ds,
)  # module-scoped fixtures: one dataset per module


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
