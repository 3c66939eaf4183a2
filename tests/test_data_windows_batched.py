"""``WindowDataset.__getitems__`` (the batched fetch torch's DataLoader calls) gives exactly what stacking
``__getitem__`` gives: state windows, n-step outcome columns, next observations and padding at episode edges, in
every layout; camera windows keep the per-item path; a DataLoader with either collate function agrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import roundtrip_dataset
import torch
from roundtrip_dataset import CAM
from test_rl_datasets import STATE, write_chain

from ember.data import DatasetWriter, EmberDataset, WindowDataset
from ember.data.windows import WindowBatch, collate_windows

written, ds = roundtrip_dataset.written, roundtrip_dataset.ds  # module-scoped camera dataset fixtures

ENV = "observation.environment_state"
LENGTHS = (7, 1, 3, 12, 2)  # a one-frame episode, episodes shorter than the windows


def write_state_dataset(root: Path) -> Path:
    """State + env-state episodes of LENGTHS frames, every value distinct (a wrong row shows), two tasks."""
    features = {
        STATE: {"dtype": "float32", "shape": [3], "names": ["a", "b", "c"]},
        ENV: {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        "action": {"dtype": "float32", "shape": [2], "names": ["u", "v"]},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
    }
    with DatasetWriter.create(root, fps=10, features=features, robot_type="toy") as writer:
        for ep, n in enumerate(LENGTHS):
            for t in range(n):
                base = 100.0 * ep + t
                writer.add_frame(
                    {
                        STATE: np.array([base, base + 0.25, -base], np.float32),
                        ENV: np.array([base + 0.5, 7.0 * ep], np.float32),
                        "action": np.array([base + 0.75, -t], np.float32),
                        "next.reward": float(base),
                        "next.done": np.array([t == n - 1 and ep % 2 == 0]),
                        "next.success": np.array([t % 3 == 0]),
                        "task": "push" if ep % 2 else "lift",
                    }
                )
            writer.save_episode()
    return root


@pytest.fixture(scope="module")
def state_ds(tmp_path_factory) -> EmberDataset:
    return EmberDataset(write_state_dataset(tmp_path_factory.mktemp("batched") / "state"))


def assert_same_batch(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if torch.is_tensor(value):
            assert torch.is_tensor(got[key]), key
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            assert torch.equal(got[key], value), key
        else:
            assert got[key] == value, key


def stacked(windows: WindowDataset, indices: list[int]) -> dict:
    return torch.utils.data.default_collate([windows[i] for i in indices])


LAYOUTS = [
    dict(n_obs_steps=1, horizon=1),
    dict(n_obs_steps=2, horizon=5),
    dict(n_obs_steps=3, horizon=4, next_keys=("next.reward", "next.done"), next_observation=True),
    dict(
        n_obs_steps=1,
        horizon=1,
        next_keys=("next.reward", "next.done", "next.success"),
        next_observation=True,
    ),
    dict(
        n_obs_steps=2, horizon=6, next_keys=("next.reward", "next.done"), next_observation=True, next_steps=4
    ),
    dict(n_obs_steps=1, horizon=3, next_keys=("next.reward",), next_steps=3),
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_batched_fetch_equals_stacked_items(state_ds: EmberDataset, layout: dict) -> None:
    windows = WindowDataset(state_ds, obs_keys=[STATE, ENV], **layout)
    every = list(range(len(windows)))
    rng = np.random.default_rng(0)
    edges = [0, 6, 7, 8, 10, 11, 22, 23, 24]  # first / last frames of episodes, the one-frame episode
    for indices in (every, edges, rng.permutation(len(windows)).tolist()[:13], [5, 5, 5], [-1, -24, 3]):
        batch = windows.__getitems__(indices)
        assert isinstance(batch, WindowBatch) and len(batch) == len(indices)
        expected = stacked(windows, indices)
        assert_same_batch(collate_windows(batch), expected)
        assert_same_batch(torch.utils.data.default_collate(batch), expected)  # other collate functions agree
        for k, i in enumerate(indices):
            assert_same_batch(batch[k], windows[i])
    with pytest.raises(IndexError, match="out of range"):
        windows.__getitems__([0, len(windows)])


def test_batched_fetch_pads_at_episode_edges(tmp_path: Path) -> None:
    chain = EmberDataset(write_chain(tmp_path / "chain"))  # episodes of 5 and 3 frames, state = (t, episode)
    windows = WindowDataset(
        chain,
        n_obs_steps=2,
        horizon=4,
        obs_keys=[STATE],
        next_keys=("next.reward", "next.done"),
        next_observation=True,
        next_steps=3,
    )
    batch = collate_windows(windows.__getitems__([0, 3, 5, 7]))
    assert batch[f"{STATE}_is_pad"].tolist() == [[True, False], [False, False], [True, False], [False, False]]
    assert batch[STATE][:, :, 0].tolist() == [[0, 0], [2, 3], [0, 0], [1, 2]]
    assert batch["next.reward"][:, :, 0].tolist() == [[0, 1, 2], [3, 4, 4], [10, 11, 12], [12, 12, 12]]
    assert batch["next.is_pad"].tolist() == [
        [False] * 3,
        [False, False, True],
        [False] * 3,
        [False, True, True],
    ]
    assert batch[f"next.{STATE}_is_pad"].tolist() == [
        [False, False],
        [True, True],
        [False, True],
        [True, True],
    ]
    assert batch["action_is_pad"].tolist() == [
        [True, False, False, False],
        [False, False, False, True],
        [True, False, False, False],
        [False, False, True, True],
    ]
    assert_same_batch(batch, stacked(windows, [0, 3, 5, 7]))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_batches_match_with_either_collate(state_ds: EmberDataset, num_workers: int) -> None:
    windows = WindowDataset(
        state_ds,
        n_obs_steps=2,
        horizon=3,
        obs_keys=[STATE, ENV],
        next_keys=("next.reward",),
        next_observation=True,
        next_steps=2,
    )
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(1)).tolist()

    def batches(collate) -> list[dict]:
        loader = torch.utils.data.DataLoader(
            windows, batch_size=8, sampler=order, num_workers=num_workers, collate_fn=collate
        )
        return list(loader)

    fast, plain = batches(collate_windows), batches(None)
    assert len(fast) == len(plain) == 4  # 25 windows: 8 + 8 + 8 + 1
    for k, (a, b) in enumerate(zip(fast, plain, strict=True)):
        assert_same_batch(a, b)
        assert_same_batch(a, stacked(windows, order[8 * k : 8 * k + 8]))


def test_camera_windows_keep_the_per_item_path(ds) -> None:
    windows = WindowDataset(ds, 2, 3, ["observation.state", CAM])
    items = windows.__getitems__([0, 4, 13])
    assert isinstance(items, list) and not isinstance(items, WindowBatch)
    assert_same_batch(collate_windows(items), stacked(windows, [0, 4, 13]))
