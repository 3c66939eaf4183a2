"""Training windows over a written dataset: shapes, padding at episode boundaries, the decoded-frame cache, and
observations to a batch (real files)."""

from __future__ import annotations

import numpy as np
import pytest
import roundtrip_dataset
import torch
from roundtrip_dataset import CAM, LENGTHS, TASKS, make_image

from ember.data import DatasetError, WindowDataset, to_batch
from ember.data.video import decode_call_count

written, ds = (
    roundtrip_dataset.written,
    roundtrip_dataset.ds,
)  # module-scoped fixtures: one dataset per module


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
