"""``meta/episodes`` rolls to a new file every ``META_EPISODES_PER_FILE`` episodes, so a save never rewrites more
than that many episode rows (long collections were quadratic: bench/data/RESULTS.md); the dataset reads back
whole and verifies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ember.data import DatasetWriter, EmberDataset
from ember.data.shards import META_EPISODES_PER_FILE
from ember.data.verify import verify

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [2]},
    "action": {"dtype": "float32", "shape": [1]},
}


def test_meta_episodes_roll_over_and_read_back(tmp_path: Path) -> None:
    n = META_EPISODES_PER_FILE + 5
    root = tmp_path / "ds"
    with DatasetWriter.create(root, fps=10, features=FEATURES, robot_type="panda") as writer:
        for e in range(n):
            for t in range(2):
                writer.add_frame(
                    {
                        "observation.state": np.array([e, t], np.float32),
                        "action": np.array([e], np.float32),
                        "task": "reach",
                    }
                )
            writer.save_episode()
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    assert len(files) == 2
    ds = EmberDataset(root)
    assert ds.num_episodes == n and ds.num_frames == 2 * n
    assert ds.episode_bounds(n - 1) == (2 * (n - 1), 2 * n)  # the last episode, from the second meta file
    np.testing.assert_array_equal(np.asarray(ds.episode(n - 1)["action"]).reshape(-1), [n - 1, n - 1])
    assert verify(root).ok
