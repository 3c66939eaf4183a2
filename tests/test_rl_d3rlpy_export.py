"""ember.policies.rl.d3rlpy_export: the arrays match the frames ember wrote, episodes end where ember's do, and d3rlpy
(when installed) builds the same episodes; bad reward columns are refused like ember train refuses them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_rl_datasets import write_bandit, write_chain

from ember.data import DatasetError
from ember.policies.rl.d3rlpy_export import export_arrays, to_mdp_dataset


def test_arrays_hold_the_frames_and_the_episode_ends(tmp_path: Path) -> None:
    arrays = export_arrays(write_chain(tmp_path / "chain", (5, 3)))
    assert arrays["observations"].shape == (8, 2) and arrays["actions"].shape == (8, 1)
    assert arrays["rewards"].tolist() == [0, 1, 2, 3, 4, 10, 11, 12]
    assert arrays["observations"][:, 0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert arrays["terminals"].tolist() == [0, 0, 0, 0, 1, 0, 0, 1]  # next.done at each last frame
    assert arrays["timeouts"].sum() == 0
    no_done = export_arrays(tmp_path / "chain", terminal_key="")  # then every episode ends by timeout
    assert no_done["timeouts"].tolist() == [0, 0, 0, 0, 1, 0, 0, 1] and no_done["terminals"].sum() == 0
    assert export_arrays(tmp_path / "chain", episodes=[1])["rewards"].tolist() == [10, 11, 12]


def test_bad_reward_columns_are_refused(tmp_path: Path) -> None:
    root = write_bandit(tmp_path / "unlabeled", episodes=1, length=4, reward=False)
    with pytest.raises(DatasetError, match="ember label"):
        export_arrays(root)
    with pytest.raises(DatasetError, match="not numeric state"):
        export_arrays(root, obs_keys=["task"], reward_key="next.success")


def test_d3rlpy_builds_the_same_episodes(tmp_path: Path) -> None:
    pytest.importorskip("d3rlpy")
    dataset = to_mdp_dataset(write_chain(tmp_path / "chain", (5, 3)))
    assert [len(e.rewards) for e in dataset.episodes] == [5, 3]
    assert all(e.terminated for e in dataset.episodes)
    np.testing.assert_array_equal(dataset.episodes[1].rewards[:, 0], [10, 11, 12])
    assert dataset.dataset_info.action_size == 1
