"""ember reads datasets written by LeRobot 0.4.4 itself, field by field against what LeRobot reads back.

The fixtures under ``tests/fixtures/lerobot_v3/`` were written by LeRobot's own
``LeRobotDataset.create / add_frame / save_episode / finalize`` and each carries ``expected.json``:
LeRobot's reader output (torchcodec decoding for the AV1 camera). Regenerate both with
``HF_HUB_OFFLINE=1 <lerobot venv>/bin/python tests/fixtures/make_lerobot_fixtures.py``; these tests
need neither LeRobot nor its venv.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ember.data import EmberDataset, repair, verify
from ember.data.meta import read_tasks
from ember.data.stats import numeric_stats_match

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot_v3"
CAM = "observation.images.front"
# of 255: ember (PyAV) and LeRobot (torchcodec) decode the same AV1 stream through different stacks
MEAN_TOL = 1.0
BLOCK_TOL = 2.0


def expected(name: str) -> dict:
    return json.loads((FIXTURES / name / "expected.json").read_text(encoding="utf-8"))


def ember_frames(ds: EmberDataset) -> list[dict]:
    rows = []
    for e in range(ds.num_episodes):
        ep = ds.episode(e)
        rows += [{k: v[t] for k, v in ep.items()} for t in range(ds.episode_length(e))]
    return rows


def test_fixture_holds_lerobots_own_tasks_layout():
    """The case this file exists for: tasks as an unnamed pandas index, not a 'task' column."""
    table = pq.read_table(FIXTURES / "state" / "meta" / "tasks.parquet")
    assert "task" not in table.column_names and "__index_level_0__" in table.column_names
    assert read_tasks(FIXTURES / "state") == expected("state")["tasks"]


@pytest.mark.parametrize("name", ["state", "video"])
def test_meta_matches_lerobot(name):
    exp = expected(name)
    ds = EmberDataset(FIXTURES / name)
    assert exp["lerobot_version"] == "0.4.4"
    assert (ds.fps, ds.num_episodes, ds.num_frames) == (exp["fps"], exp["num_episodes"], exp["num_frames"])
    assert sorted(ds.features) == exp["features"]
    assert ds.meta.tasks == exp["tasks"]
    assert ds.video_keys == ([CAM] if name == "video" else [])
    for e, ep in enumerate(exp["episodes"]):
        assert ds.episode_bounds(e) == (ep["dataset_from_index"], ep["dataset_to_index"])
        assert ds.episode_length(e) == ep["length"]
    rows = ds.meta.episodes.to_pydict()
    assert [sorted(t) for t in rows["tasks"]] == [sorted(ep["tasks"]) for ep in exp["episodes"]]
    if name == "video":
        starts = [ds.video_from_timestamp(CAM, e) for e in range(ds.num_episodes)]
        assert starts == exp["video_from_timestamps"]
        assert ds.features[CAM]["info"]["video.codec"] == "av1"  # LeRobot's default encoder, libsvtav1


@pytest.mark.parametrize("name", ["state", "video"])
def test_every_frame_matches_lerobot(name):
    exp = expected(name)["frames"]
    rows = ember_frames(EmberDataset(FIXTURES / name))
    assert len(rows) == len(exp)
    for got, want in zip(rows, exp, strict=True):
        for key in ("index", "episode_index", "frame_index", "task_index"):
            assert int(got[key]) == want[key], (key, want["index"])
        assert got["task"] == want["task"]
        assert got["timestamp"] == np.float32(want["timestamp"])
        for key in ("observation.state", "action"):
            np.testing.assert_array_equal(got[key], np.asarray(want[key], dtype=np.float32))
    # episode 2 switches task halfway: per-frame tasks come from task_index, not from the episode
    assert {r["task"] for r in rows if r["episode_index"] == 2} == set(expected(name)["tasks"])


def test_video_frames_match_lerobots_decoding():
    exp = expected("video")["frames"]
    rows = ember_frames(EmberDataset(FIXTURES / "video"))
    means = np.array([r[CAM].reshape(-1, 3).mean(0) for r in rows])
    want = np.array([w[CAM + ".channel_means"] for w in exp])
    assert rows[0][CAM].shape == (48, 64, 3) and rows[0][CAM].dtype == np.uint8
    np.testing.assert_allclose(means, want, atol=MEAN_TOL)
    # the tolerance is tight enough to tell neighbouring frames apart (red rises 8 levels a frame)
    assert np.all(np.abs(want[1:12, 0] - want[:11, 0]) > 4 * MEAN_TOL)
    checked = 0
    for got, w in zip(rows, exp, strict=True):
        if CAM + ".block_means" in w:
            blocks = got[CAM].astype(np.float64).reshape(4, 12, 4, 16, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
            np.testing.assert_allclose(blocks, w[CAM + ".block_means"], atol=BLOCK_TOL)
            checked += 1
    assert checked >= 6


@pytest.mark.parametrize("name", ["state", "video"])
def test_verify_accepts_lerobot_dataset(name):
    report = verify(FIXTURES / name, deep=True)
    assert report.ok and not report.problems, report.summary()


def test_repair_leaves_a_valid_lerobot_dataset_alone(tmp_path):
    root = shutil.copytree(FIXTURES / "video", tmp_path / "video")
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert repair(root) == []
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_window_dataset_over_lerobot_fixture(tmp_path):
    from ember.data import WindowDataset

    exp = expected("video")["frames"]
    ds = EmberDataset(FIXTURES / "video")
    windows = WindowDataset(
        ds, n_obs_steps=2, horizon=4, obs_keys=["observation.state", CAM], cache_dir=tmp_path,
        normalization={"observation.state": "mean_std", "action": "min_max"},
    )  # fmt: skip
    assert len(windows) == len(exp)
    stats = ds.meta.stats
    state = np.array([w["observation.state"] for w in exp], dtype=np.float32)
    action = np.array([w["action"] for w in exp], dtype=np.float32)
    norm_state = (state - stats["observation.state"]["mean"]) / (stats["observation.state"]["std"] + 1e-8)
    lo, hi = stats["action"]["min"], stats["action"]["max"]
    norm_action = (action - (lo + hi) / 2) / ((hi - lo) / 2 + 1e-8)

    first = windows[12]  # first frame of episode 1: the earlier observation step is padding
    assert first["observation.state_is_pad"].tolist() == [True, False]
    np.testing.assert_allclose(first["observation.state"].numpy(), norm_state[[12, 12]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first["action"].numpy(), norm_action[[12, 12, 13, 14]], rtol=1e-5, atol=1e-6)
    assert first["action_is_pad"].tolist() == [True, False, False, False]
    assert first["task"] == exp[12]["task"]

    last = windows[26]  # last frame of episode 1: actions past its end repeat the last one
    assert last["action_is_pad"].tolist() == [False, False, True, True]
    np.testing.assert_allclose(last["action"].numpy(), norm_action[[25, 26, 26, 26]], rtol=1e-5, atol=1e-6)
    img = last[CAM].numpy()
    assert img.shape == (2, 3, 48, 64)
    want = np.array([exp[25][CAM + ".channel_means"], exp[26][CAM + ".channel_means"]])
    np.testing.assert_allclose(img.mean(axis=(2, 3)) * 255, want, atol=MEAN_TOL)
    assert windows[36]["task"] == exp[36]["task"] != exp[27]["task"]  # episode 2's second task


def test_stats_check_accepts_lerobots_layouts():
    """LeRobot's N-D stats are per last axis and its means are accumulated in float32."""
    rng = np.random.default_rng(0)
    grid = rng.normal(size=(500, 2, 3)).astype(np.float32)
    per_last_axis = {"mean": grid.reshape(-1, 3).mean(0).tolist(), "min": grid.reshape(-1, 3).min(0).tolist()}
    per_element = {"mean": grid.mean(0).tolist(), "min": grid.min(0).tolist()}
    assert numeric_stats_match(grid, per_last_axis) and numeric_stats_match(grid, per_element)
    assert not numeric_stats_match(grid, {"mean": [0.5, 0.0, 0.0], "min": per_last_axis["min"]})

    action = np.random.default_rng(0).uniform(-3, 3, size=(8000, 2)).astype(np.float32)
    float32_mean = np.mean(action, axis=0)  # what LeRobot stores: ~2e-8 off a mean near 0, which
    exact = action.astype(np.float64).mean(0)  # the former float64-precision check called a mismatch
    assert not np.allclose(float32_mean, exact, rtol=1e-6, atol=1e-9)
    low = action.min(0).tolist()
    assert numeric_stats_match(action, {"mean": float32_mean.tolist(), "min": low})
    assert not numeric_stats_match(action, {"mean": (float32_mean + 0.01).tolist(), "min": low})
