"""Depth, embedded images, string and language columns, add_columns, verify/repair, loader options, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from ember.data import DatasetError, DatasetWriter, EmberDataset, WindowDataset, repair
from ember.data.cli import DataConfig, run_data
from ember.data.labels import add_columns
from ember.data.language import LanguageRow, correction, instruction, motion
from ember.data.stats import QUANTILE_KEYS, QUANTILES
from ember.data.verify import verify

FPS = 10
LENGTHS = [9, 6]
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [3], "names": ["a", "b", "c"]},
    "action": {"dtype": "float32", "shape": [2], "names": None},
    "observation.images.front": {"dtype": "video", "shape": [16, 16, 3], "names": None},
    "observation.images.wrist": {"dtype": "image", "shape": [8, 8, 3], "names": None},
    "observation.depth.front": {"dtype": "float32", "shape": [8, 10]},  # metres
    "observation.depth.wrist": {"dtype": "uint16", "shape": [6, 4]},  # millimetres
    # what real/ records: per-frame string columns plus a float timestamp
    "language.instruction": {"dtype": "string", "shape": [1], "names": None},
    "language.correction": {"dtype": "string", "shape": [1], "names": None},
}


def make_episode(e: int, n: int) -> dict[str, np.ndarray | list]:
    rng = np.random.default_rng(10 + e)
    y, x = np.mgrid[0:16, 0:16]
    front = np.stack([np.stack([x * 8, y * 8, np.full_like(x, 30 + 10 * t)], -1) for t in range(n)]).astype(
        np.uint8
    )
    return {
        "observation.state": rng.standard_normal((n, 3)).astype(np.float32),
        "action": rng.standard_normal((n, 2)).astype(np.float32),
        "observation.images.front": front,
        "observation.images.wrist": rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
        "observation.depth.front": rng.uniform(0.1, 3.0, (n, 8, 10)).astype(np.float32),
        "observation.depth.wrist": rng.integers(0, 4000, (n, 6, 4)).astype(np.uint16),
        "language.instruction": ["pick the red cube" if t < 4 else "now the blue one" for t in range(n)],
        "language.correction": ["" if t != 4 else "now the blue one" for t in range(n)],
    }


def write(root: Path) -> list[dict]:
    episodes = [make_episode(e, n) for e, n in enumerate(LENGTHS)]
    with DatasetWriter.create(root, fps=FPS, features=FEATURES, robot_type="panda", language=True) as w:
        for e, data in enumerate(episodes):
            w.add_language(instruction("pick the red cube"))
            for t in range(LENGTHS[e]):
                frame = {k: v[t] for k, v in data.items()}
                if t == 2:
                    frame["language_persistent"] = [motion("move left")]
                w.add_frame({**frame, "task": "sort cubes"})
            w.add_language(correction("now the blue one", timestamp=0.33))  # lands on frame 4
            w.add_language(instruction("pick the blue cube", timestamp=0.33))  # exact time kept
            w.add_language(
                LanguageRow("user", "which cube?", "vqa", camera="observation.images.front"), timestamp=0.5
            )
            w.save_episode()
    return episodes


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("feat") / "ds"
    return root, write(root)


def test_depth_round_trips_exactly_with_lerobot_markers(written):
    root, episodes = written
    ds = EmberDataset(root)
    assert ds.depth_keys == ["observation.depth.front", "observation.depth.wrist"]
    info = json.loads((root / "meta/info.json").read_text())["features"]
    assert info["observation.depth.front"] == {"dtype": "image", "shape": [8, 10, 1],
        "names": ["height", "width", "channels"], "info": {"is_depth_map": True, "depth_unit": "m"}}  # fmt: skip
    assert info["observation.depth.wrist"]["info"]["depth_unit"] == "mm"
    for e, data in enumerate(episodes):
        got = ds.episode(e)
        assert (
            got["observation.depth.front"].dtype == np.float32
            and got["observation.depth.wrist"].dtype == np.uint16
        )
        np.testing.assert_array_equal(got["observation.depth.front"][..., 0], data["observation.depth.front"])
        np.testing.assert_array_equal(got["observation.depth.wrist"][..., 0], data["observation.depth.wrist"])
        np.testing.assert_array_equal(
            got["observation.images.wrist"], data["observation.images.wrist"]
        )  # PNG
    # stored as datasets.Image structs holding TIFF bytes, like LeRobot's raw depth frames
    table = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert table.schema.field("observation.depth.wrist").type == pa.struct(
        [("bytes", pa.binary()), ("path", pa.string())]
    )
    assert table.column("observation.depth.wrist")[0]["bytes"].as_py()[:2] in (b"II", b"MM")
    assert table.column("observation.images.wrist")[0]["bytes"].as_py()[:4] == b"\x89PNG"
    # stats stay in the stored unit with LeRobot's (1, 1, 1) shape; uint16 quantiles are exact
    stats = json.loads((root / "meta/stats.json").read_text())
    for key in ("observation.depth.front", "observation.depth.wrist"):
        x = np.concatenate([d[key].reshape(-1) for d in episodes]).astype(np.float64)
        st = {k: np.asarray(v) for k, v in stats[key].items()}
        assert st["mean"].shape == (1, 1, 1) and st["count"].tolist() == [sum(LENGTHS)]
        np.testing.assert_allclose(st["mean"].ravel(), [x.mean()], rtol=1e-12)
        np.testing.assert_allclose(st["std"].ravel(), [x.std()], rtol=1e-9)
        assert st["min"].ravel()[0] == x.min() and st["max"].ravel()[0] == x.max()
    wrist = np.concatenate([d["observation.depth.wrist"].reshape(-1) for d in episodes]).astype(np.float64)
    for q_key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
        assert np.asarray(stats["observation.depth.wrist"][q_key]).ravel()[0] == np.quantile(wrist, q)


def test_string_columns_for_the_ros_recorder(written):
    root, episodes = written
    ds = EmberDataset(root)
    for e, data in enumerate(episodes):
        got = ds.episode(e)
        assert list(got["language.instruction"]) == data["language.instruction"]
        assert list(got["language.correction"]) == data["language.correction"]  # empty strings survive
    assert (
        pq.read_schema(root / "data/chunk-000/file-000.parquet").field("language.correction").type
        == pa.string()
    )
    stats = json.loads((root / "meta/stats.json").read_text())
    assert "language.instruction" not in stats and "language_events" not in stats


def test_language_columns_follow_lerobot_schema_and_read_back(written):
    root, _ = written
    ds = EmberDataset(root)
    feats = ds.features
    assert feats["language_persistent"] == {"dtype": "language", "shape": [1], "names": None}
    assert feats["language_events"] == {"dtype": "language", "shape": [1], "names": None}
    schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    row = schema.field("language_persistent").type.value_type
    assert [f.name for f in row] == ["role", "content", "style", "timestamp", "camera", "tool_calls"]
    assert row.field("timestamp").type == pa.float32() and not row.field("role").nullable
    ev = schema.field("language_events").type.value_type
    assert [f.name for f in ev] == ["role", "content", "style", "camera", "tool_calls"]
    lang = ds.language(0)
    assert [(r.style, r.content, round(r.timestamp, 4)) for r in lang.persistent] == [
        ("subtask", "pick the red cube", 0.0), ("motion", "move left", 0.2), ("subtask", "pick the blue cube", 0.33)]  # fmt: skip
    assert lang.active_at(0.32, "subtask").content == "pick the red cube"
    assert lang.active_at(0.33, "subtask").content == "pick the blue cube"
    assert lang.corrections() == [(0.4, "now the blue one")]
    assert lang.emitted_at(5, style="vqa", camera="observation.images.front")[0].content == "which cube?"
    persistent = (
        pq.read_table(root / "data/chunk-000/file-000.parquet").column("language_persistent").to_pylist()
    )
    assert all(p == persistent[0] for p in persistent[:9])  # broadcast to every frame, as LeRobot


def test_language_rows_are_validated(tmp_path):
    feats = {"action": {"dtype": "float32", "shape": [1], "names": None}}
    with DatasetWriter.create(tmp_path / "l", fps=FPS, features=feats, language=True) as w:
        with pytest.raises(DatasetError, match="camera"):
            w.add_language(LanguageRow("user", "q", "vqa"))
        with pytest.raises(DatasetError, match="belongs in 'language_persistent'"):
            w.add_frame({"action": [0.0], "task": "t", "language_events": [motion("up")]})
        assert w.episode_length == 0
        w.add_frame({"action": [0.0], "task": "t"})
        w.add_language(correction("too late", timestamp=5.0))
        with pytest.raises(DatasetError, match="only 1 frames"):
            w.save_episode()
    with (
        DatasetWriter.create(tmp_path / "n", fps=FPS, features=feats) as w,
        pytest.raises(DatasetError, match="language=True"),
    ):
        w.add_language(instruction("x"))


def test_add_columns_rewrites_only_parquet(written, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(written[0], root)
    ds = EmberDataset(root)
    videos = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*.mp4")}
    n = ds.num_frames
    reward = np.linspace(0, 1, n)
    done = add_columns(root, {"next.reward": reward, "next.success": np.arange(n) % 5 == 0,
                              "reward.vlm": {0: np.ones((9, 2)), 1: np.zeros((6, 2))}})  # fmt: skip
    assert any("info.json" in d for d in done)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*.mp4")} == videos
    ds = EmberDataset(root)
    assert ds.features["reward.vlm"] == {"dtype": "float32", "shape": [2], "names": None}
    assert ds.features["next.success"]["dtype"] == "bool"
    np.testing.assert_array_equal(
        np.concatenate([ds.episode(e)["next.reward"] for e in range(2)]), reward.astype(np.float32)
    )
    np.testing.assert_array_equal(ds.episode(1)["reward.vlm"], np.zeros((6, 2), np.float32))
    stats = json.loads((root / "meta/stats.json").read_text())
    assert stats["next.reward"]["mean"] == [float(reward.astype(np.float32).astype(np.float64).mean())]
    assert ds.meta.episodes.column("stats/reward.vlm/mean").to_pylist()[0] == [1.0, 1.0]
    assert verify(root).ok
    with pytest.raises(DatasetError, match="overwrite=True"):
        add_columns(root, {"next.reward": reward})
    add_columns(root, {"next.reward": np.zeros(n)}, overwrite=True)
    assert EmberDataset(root).episode(0)["next.reward"].sum() == 0
    with pytest.raises(DatasetError, match="values but the dataset has"):
        add_columns(root, {"x": np.zeros(n - 1)})
    with pytest.raises(DatasetError, match="managed by ember"):
        add_columns(root, {"index": np.zeros(n)})
    # an add_columns interrupted before its commit point: repair drops the orphan column
    add_columns(root, {"later": np.ones(n)})
    info = json.loads((root / "meta/info.json").read_text())
    del info["features"]["later"]
    (root / "meta/info.json").write_text(json.dumps(info))
    assert EmberDataset(root).frame_table().num_rows == n  # readers ignore undeclared columns
    assert not verify(root).ok or verify(root).repairable
    assert any("later" in a for a in repair(root))
    assert "later" not in pq.read_schema(root / "data/chunk-000/file-000.parquet").names and verify(root).ok


def test_verify_and_repair_rebuild_lost_episode_metadata(written, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(written[0], root)
    before = EmberDataset(root).meta.episodes.to_pydict()
    assert verify(root, deep=True).ok
    shutil.rmtree(root / "meta/episodes")
    report = verify(root)
    assert not report.ok and report.repairable
    actions = repair(root)
    assert any("rebuilt episode metadata" in a for a in actions)
    after = EmberDataset(root).meta.episodes.to_pydict()
    for key in before:
        if not key.startswith("stats/observation.images.front"):  # re-derived from decoded (lossy) video
            assert after[key] == before[key], key
    assert verify(root).ok and repair(root) == []
    (root / "meta/tasks.parquet").unlink()  # the task text comes back from meta/episodes' task lists
    assert any("tasks.parquet" in a for a in repair(root))
    assert EmberDataset(root).meta.tasks == ["sort cubes"] and verify(root).ok


def test_verify_reports_stray_and_wrong_stats(written, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(written[0], root)
    stats = json.loads((root / "meta/stats.json").read_text())
    stats["action"]["mean"] = [9.0, 9.0]
    (root / "meta/stats.json").write_text(json.dumps(stats))
    (root / "data/chunk-000/.file-000.parquet.tmp-1-abc").write_bytes(b"x")
    report = verify(root)
    text = report.summary()
    assert "stats of 'action' do not match" in text and "temporary file" in text and not report.ok
    actions = repair(root)
    assert any("stats.json" in a for a in actions) and any("temporary" in a for a in actions)
    assert verify(root).ok and json.loads((root / "meta/stats.json").read_text())["action"]["mean"] != [
        9.0,
        9.0,
    ]


def test_window_options_uint8_is_pad_uncached_and_normalization(written, tmp_path):
    root, episodes = written
    ds = EmberDataset(root)
    keys = ["observation.state", "observation.images.front", "observation.images.wrist", "observation.depth.wrist",
            "language.instruction"]  # fmt: skip
    cached = WindowDataset(ds, 3, 4, keys, cache_dir=tmp_path / "c")
    raw8 = WindowDataset(ds, 3, 4, keys, cache_dir=tmp_path / "c", image_dtype="uint8")
    live = WindowDataset(ds, 3, 4, keys, cache=False)
    norm = WindowDataset(ds, 3, 4, keys, cache_dir=tmp_path / "c",
                         normalization={"observation.state": "mean_std", "action": "min_max"})  # fmt: skip
    st = ds.meta.stats
    for i in (0, 1, 9, len(cached) - 1):
        a, b, c, d = cached[i], raw8[i], live[i], norm[i]
        for key in ("observation.images.front", "observation.images.wrist"):
            assert b[key].dtype == torch.uint8 and b[key].shape[1] == 3
            torch.testing.assert_close(b[key].float() / 255, a[key])
            torch.testing.assert_close(c[key], a[key])  # per-item decode == cached frames
        assert (
            a["observation.depth.wrist"].shape == (3, 1, 6, 4)
            and a["observation.depth.wrist"].dtype == torch.float32
        )
        assert a["language.instruction"] in ("pick the red cube", "now the blue one")
        expected_pad = [i - k < (0 if i < LENGTHS[0] else LENGTHS[0]) for k in (2, 1, 0)]
        for key in keys[:-1]:
            assert a[f"{key}_is_pad"].tolist() == expected_pad, key
        mean, std = st["observation.state"]["mean"], st["observation.state"]["std"]
        np.testing.assert_allclose(
            d["observation.state"].numpy(), (a["observation.state"].numpy() - mean) / (std + 1e-8), rtol=1e-5
        )
        lo, hi = st["action"]["min"], st["action"]["max"]
        np.testing.assert_allclose(
            d["action"].numpy(), 2 * (a["action"].numpy() - lo) / (hi - lo) - 1, atol=1e-5
        )
        torch.testing.assert_close(norm.unnormalize("action", d["action"]), a["action"])
    assert cached[0]["observation.images.front_is_pad"].tolist() == [True, True, False]
    with pytest.raises(DatasetError, match="normalization mode"):
        WindowDataset(ds, 1, 1, keys, normalization={"action": "zscore"})
    batch = next(iter(torch.utils.data.DataLoader(raw8, batch_size=4, num_workers=0)))
    assert batch["observation.images.front"].dtype == torch.uint8 and len(batch["language.instruction"]) == 4


def test_cli_actions(written, tmp_path, capsys):
    root, _ = written
    assert run_data(DataConfig(action="info", root=str(root))) == 0
    assert "observation.depth.front" in capsys.readouterr().out
    assert run_data(DataConfig(action="verify", root=str(root))) == 0
    out = tmp_path / "viz"
    assert (
        run_data(DataConfig(action="viz", root=str(root), episode=1, out=str(out), viz_backend="files")) == 0
    )
    assert (out / "episode_000001.png").stat().st_size > 1000 and (out / "episode_000001.mp4").is_file()
    assert run_data(DataConfig(action="viz", root=str(root), episode=7, out=str(out))) == 1
    assert "out of range" in capsys.readouterr().err
    assert run_data(DataConfig(action="bogus", root=str(root))) == 2
    assert run_data(DataConfig(action="import", root=str(tmp_path / "x"), source=str(tmp_path))) == 1
