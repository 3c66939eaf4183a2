"""Corrupt or missing files raise DatasetError naming the file and episodes; the rest stays readable."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ember.data import DatasetError, DatasetWriter, EmberDataset

CAM = "observation.images.cam"
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [4], "names": None},
    "action": {"dtype": "float32", "shape": [2], "names": None},
    CAM: {"dtype": "video", "shape": [16, 16, 3], "names": None},
}
LENGTH = 40


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """6 episodes, two per data/video file (tiny size limits force the split)."""
    root = tmp_path_factory.mktemp("corrupt") / "ds"
    rng = np.random.default_rng(0)
    with DatasetWriter.create(
        root, fps=20, features=FEATURES, data_files_size_in_mb=0.005, video_files_size_in_mb=0.005
    ) as w:
        for e in range(6):
            for t in range(LENGTH):
                img = np.full((16, 16, 3), (e * 40 + t) % 256, np.uint8)
                w.add_frame({"observation.state": rng.standard_normal(4), "action": rng.standard_normal(2),
                             CAM: img, "task": "t"})  # fmt: skip
            w.save_episode()
    return root


@pytest.fixture
def copy(pristine, tmp_path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(pristine, dst)
    return dst


def _episodes_in(ds: EmberDataset, column: str, value: tuple[int, int]) -> list[int]:
    d = ds.meta.episodes.to_pydict()
    chunk, file = column + "/chunk_index", column + "/file_index"
    return [e for e in range(ds.num_episodes) if (d[chunk][e], d[file][e]) == value]


def test_layout_has_several_files(pristine):
    ds = EmberDataset(pristine)
    assert len(list((pristine / "data").rglob("*.parquet"))) >= 2
    assert len(_episodes_in(ds, "data", (0, 1))) >= 1


def test_truncated_parquet_names_file_and_episodes(copy):
    good = EmberDataset(copy)
    victims = _episodes_in(good, "data", (0, 0))
    path = copy / "data/chunk-000/file-000.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as err:
        EmberDataset(copy)
    msg = str(err.value)
    assert str(path) in msg and "strict=False" in msg
    assert f"episode(s): {victims[0]}" in msg
    ds = EmberDataset(copy, strict=False)
    assert sorted(ds.bad_episodes) == victims
    others = [e for e in range(ds.num_episodes) if e not in victims]
    for e in others:
        np.testing.assert_array_equal(ds.episode(e)["action"], good.episode(e)["action"])
    with pytest.raises(DatasetError, match=f"episode {victims[0]}"):
        ds.episode(victims[0])
    assert ds.frame_table().num_rows == LENGTH * len(others)


def test_bit_flip_inside_parquet_is_detected_on_read(copy):
    path = copy / "data/chunk-000/file-001.parquet"
    data = bytearray(path.read_bytes())
    for i in range(200, 400):  # inside the first column chunk, footer untouched
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    ds = EmberDataset(copy)  # the footer is fine, so opening works...
    victims = _episodes_in(ds, "data", (0, 1))
    with pytest.raises(DatasetError) as err:  # ...but the page checksums catch the damage
        ds.episode(victims[0])
    assert str(path) in str(err.value) and str(victims[0]) in str(err.value)
    assert ds.episode(0)["action"].shape == (LENGTH, 2)  # another file: still readable


def test_truncated_mp4_names_file_and_episodes(copy):
    good = EmberDataset(copy)
    victims = _episodes_in(good, f"videos/{CAM}", (0, 1))
    path = copy / f"videos/{CAM}/chunk-000/file-001.mp4"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match=str(path)):
        EmberDataset(copy)
    ds = EmberDataset(copy, strict=False)
    assert sorted(ds.bad_episodes) == victims
    assert ds.episode(0)[CAM].shape == (LENGTH, 16, 16, 3)


def test_missing_meta_is_reported(copy):
    (copy / "meta/info.json").unlink()
    with pytest.raises(DatasetError, match="info.json is missing"):
        EmberDataset(copy)


def test_missing_data_file_is_reported(copy):
    path = copy / "data/chunk-000/file-001.parquet"
    path.unlink()
    with pytest.raises(DatasetError, match=f"{path} is missing"):
        EmberDataset(copy)


def test_missing_episode_metadata_is_reported(copy):
    shutil.rmtree(copy / "meta/episodes")
    with pytest.raises(DatasetError, match="episode metadata"):
        EmberDataset(copy)
