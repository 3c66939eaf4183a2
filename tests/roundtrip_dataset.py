"""The small LeRobot v3 dataset the data round-trip tests write with ember.data (three episodes, one camera) and
read back: what every frame holds, and the module-scoped ``written`` / ``ds`` fixtures. A test module uses them
as ``written, ds = roundtrip_dataset.written, roundtrip_dataset.ds`` (one dataset per module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ember.data import DatasetWriter, EmberDataset

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
