"""RT-H language motions (vla/motions.py, motion_labels.py, motion_overrides.py): derivation, vocabulary,
labeling a dataset, the loader hook, overrides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ember.data import DatasetError, DatasetWriter, EmberDataset, instruction, verify
from ember.data.windows import WindowDataset
from ember.vla.motion_labels import dataset_motions, label_motions
from ember.vla.motion_overrides import MotionOverrideLog
from ember.vla.motions import (
    CLOSE_GRIPPER,
    OPEN_GRIPPER,
    STAY,
    MotionConfig,
    MotionVocabulary,
    derive_motions,
)
from ember.vla.motions_cli import VERB, MotionsConfig, run_motions

FPS = 10


def _line(n: int, step: tuple[float, float, float]) -> np.ndarray:
    return np.arange(n)[:, None] * np.asarray(step)[None, :]


# ---------------------------------------------------------------------- derive_motions
def test_left_path_is_move_left_then_stay_at_the_end():
    motions = derive_motions(_line(10, (0.0, 0.01, 0.0)), None, FPS)  # 1 cm a frame along +y, 3-frame window
    # 3 cm over the window for t <= 6; 2 cm (t=7), 1 cm (t=8): still above the 1 cm dead zone; the last frame: stay
    assert motions == ["move left"] * 9 + [STAY]


def test_forward_and_down_names_both_axes_and_drops_a_small_one():
    motions = derive_motions(_line(12, (0.01, 0.002, -0.008)), None, FPS)
    assert motions[0] == "move forward and down"  # y moved 6 mm over the window: dead zone
    only_x = derive_motions(_line(12, (0.01, 0.0, -0.004)), None, FPS)
    assert only_x[0] == "move forward"  # z is 12 mm (> dead zone) but < 0.5 x 30 mm: not named


def test_gripper_close_and_open_events_win_over_small_motion():
    n = 20
    grip = np.clip((np.arange(n) - 5) / 4.0, 0.0, 1.0)  # closes over frames 5..9
    grip[15:] = 0.0  # opens at 15
    motions = derive_motions(_line(n, (0.0, 0.0, 0.0005)), grip, FPS)
    assert motions[:2] == [STAY, STAY]
    assert motions[3:9] == [CLOSE_GRIPPER] * 6
    assert motions[12:15] == [OPEN_GRIPPER] * 3
    assert motions[-1] == STAY


def test_window_and_dead_zone_are_config():
    path = _line(10, (0.0, -0.004, 0.0))  # 4 mm a frame to the right
    assert derive_motions(path, None, FPS)[0] == "move right"  # 12 mm over 0.3 s
    assert derive_motions(path, None, FPS, MotionConfig(window_s=0.1))[0] == STAY  # 4 mm < 1 cm
    assert derive_motions(path, None, FPS, MotionConfig(dead_zone_m=0.002, window_s=0.1))[0] == "move right"


def test_bad_inputs_are_dataset_errors():
    with pytest.raises(DatasetError, match=r"\(T, 3\)"):
        derive_motions(np.zeros((5, 2)), None, FPS)
    with pytest.raises(DatasetError, match="gripper has 4 values"):
        derive_motions(np.zeros((5, 3)), np.zeros(4), FPS)
    with pytest.raises(DatasetError, match="max_axes"):
        derive_motions(np.zeros((5, 3)), None, FPS, MotionConfig(max_axes=4))


# ---------------------------------------------------------------------- vocabulary
def test_vocabulary_is_canonical_and_round_trips():
    vocab = MotionVocabulary.from_config(MotionConfig())
    assert vocab.motions[:3] == (STAY, CLOSE_GRIPPER, OPEN_GRIPPER)
    assert len(vocab) == 3 + 6 + 12  # single axes x2 signs, pairs x4 signs
    assert "move forward and down" in vocab and "move forward, left and up" not in vocab
    assert len(MotionVocabulary.from_config(MotionConfig(max_axes=3))) == 3 + 6 + 12 + 8
    again = MotionVocabulary.from_json(vocab.to_json())
    assert again == vocab
    assert all(again.motion(again.index(m)) == m for m in vocab)
    with pytest.raises(DatasetError, match="not a motion"):
        vocab.index("dance")
    with pytest.raises(DatasetError, match="outside"):
        vocab.motion(len(vocab))
    # every phrase derive_motions emits is in the vocabulary
    rng = np.random.default_rng(0)
    emitted = derive_motions(np.cumsum(rng.normal(0, 0.01, (200, 3)), 0), rng.uniform(0, 1, 200), FPS)
    assert set(emitted) <= set(vocab)


# ---------------------------------------------------------------------- label_motions
@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """Two PickPlace episodes recorded by `ember collect` (privileged: ee.* in observation.environment_state)."""
    from ember.collect import CollectConfig, collect

    root = tmp_path_factory.mktemp("motions") / "pick"
    collect(CollectConfig(task="PickPlace", num_episodes=2, out=str(root), seed=0), quiet=True)
    return root


def _data_tables(root: Path) -> list:
    return [pq.read_table(p) for p in sorted((root / "data").rglob("*.parquet"))]


def test_label_motions_writes_rows_keeps_columns_and_is_idempotent(collected):
    before = EmberDataset(collected).frame_table()
    summary = label_motions(collected)
    assert summary.source == "columns:observation.environment_state"
    assert summary.frames == before.num_rows and summary.episodes == 2
    assert sum(summary.counts.values()) == before.num_rows
    assert (
        summary.counts[CLOSE_GRIPPER] >= 2 and summary.counts["move down"] >= 2
    )  # a pick reaches down, grasps

    ds = EmberDataset(collected)
    assert ds.has_language
    after = ds.frame_table()
    for name in before.column_names:  # every earlier column intact, bit for bit
        assert after.column(name).equals(before.column(name)), name
    lang = ds.language(0)
    rows = [r for r in lang.persistent if r.style == "motion"]
    assert rows and all(r.role == "assistant" for r in rows)
    assert len(rows) == len({r.timestamp for r in rows})
    per_frame = dataset_motions(collected, 0)
    assert len(per_frame) == ds.episode_length(0)
    assert json.loads((collected / "meta/motions.json").read_text())["motions"] == summary.vocabulary
    assert MotionVocabulary.from_dataset(collected).motions == tuple(summary.vocabulary)
    assert not [p for p in verify(collected).problems if p.severity == "error"]

    tables = _data_tables(collected)
    again = label_motions(collected)  # re-run: same rows, not appended twice
    assert again.counts == summary.counts and again.rows == summary.rows
    assert all(a.equals(b) for a, b in zip(tables, _data_tables(collected), strict=True))


def test_fk_from_joints_agrees_with_recorded_ee(collected):
    label_motions(collected)
    recorded = dataset_motions(collected, 0) + dataset_motions(collected, 1)
    summary = label_motions(collected, MotionConfig(source="fk"))
    assert summary.source == "fk:panda"
    fk = dataset_motions(collected, 0) + dataset_motions(collected, 1)
    agree = np.mean([a == b for a, b in zip(recorded, fk, strict=True)])
    assert agree >= 0.9, agree


def test_window_dataset_serves_motion_index(collected):
    label_motions(collected)
    ds = EmberDataset(collected)
    vocab = MotionVocabulary.from_dataset(collected)
    windows = WindowDataset(ds, n_obs_steps=1, horizon=2, obs_keys=["observation.state"], motion=True)
    expect = dataset_motions(collected, 0) + dataset_motions(collected, 1)
    got = [windows[i] for i in range(len(windows))]
    assert [g["motion"] for g in got] == expect
    assert [int(g["motion.index"]) for g in got] == [vocab.index(m) for m in expect]
    assert got[0]["motion.index"].dtype.is_floating_point is False
    plain = WindowDataset(ds, n_obs_steps=1, horizon=2, obs_keys=["observation.state"])
    assert "motion" not in plain[0]


def _joints_only(root: Path, language: bool = True) -> None:
    """What a real arm gives: Panda joint state only (no ee columns), with an earlier subtask row."""
    from ember.robots import get_robot

    robot = get_robot("panda")
    n = 30
    q = np.tile(np.r_[robot.home_qpos, robot.gripper_open], (n, 1))
    q[:10, 0] += 0.05 * np.arange(10)  # base yaw: the gripper swings to the robot's left
    q[10:, 0] = q[9, 0]
    for t in range(15, 20):
        q[t, 7:] = robot.gripper_open + (robot.gripper_closed - robot.gripper_open) * (t - 14) / 5
    q[20:, 7:] = robot.gripper_closed
    feats = {
        "observation.state": {"dtype": "float32", "shape": [9], "names": list(robot.state_names)},
        "action": {"dtype": "float32", "shape": [9], "names": list(robot.state_names)},
    }
    with DatasetWriter.create(root, fps=FPS, features=feats, robot_type="panda", language=language) as w:
        if language:
            w.add_language(instruction("swing left and grasp"))
        for t in range(n):
            w.add_frame(
                {
                    "observation.state": q[t].astype(np.float32),
                    "action": q[t].astype(np.float32),
                    "task": "swing left and grasp",
                }
            )
        w.save_episode()


def test_joints_only_dataset_goes_through_forward_kinematics(tmp_path):
    root = tmp_path / "arm"
    _joints_only(root)
    summary = run_motions(MotionsConfig(dataset=str(root)))  # the verb's function
    assert VERB.name == "motions" and VERB.run(MotionsConfig(dataset=str(root), json=True)) == 0
    assert summary.source == "fk:panda"
    motions = dataset_motions(root, 0)
    assert motions[:9] == ["move left"] * 9
    assert motions[12:19] == [CLOSE_GRIPPER] * 7
    assert motions[-1] == STAY
    lang = EmberDataset(root).language(0)
    assert lang.active_at(0.0, "subtask").content == "swing left and grasp"  # the earlier row is kept


def test_an_interrupted_run_leaves_readers_on_the_old_features_and_a_rerun_finishes(tmp_path, monkeypatch):
    from ember.data import meta

    root = tmp_path / "plain"
    _joints_only(root, language=False)
    before = EmberDataset(root).frame_table()

    def die(*_args, **_kwargs):
        raise KeyboardInterrupt("killed before the commit point")

    monkeypatch.setattr(meta, "write_info", die)
    with pytest.raises(KeyboardInterrupt):
        label_motions(root)
    ds = EmberDataset(root)  # shards rewritten, info.json not: the old dataset, readable as before
    assert not ds.has_language and ds.frame_table().equals(before)
    monkeypatch.undo()
    summary = label_motions(root)
    assert summary.rows >= 3 and EmberDataset(root).has_language
    assert dataset_motions(root, 0)[0] == "move left"
    assert not [p for p in verify(root).problems if p.severity == "error"]


def test_joints_only_without_robot_type_says_what_is_missing(tmp_path):
    feats = {
        "observation.state": {"dtype": "float32", "shape": [2], "names": ["a", "b"]},
        "action": {"dtype": "float32", "shape": [2], "names": None},
    }
    with DatasetWriter.create(tmp_path / "x", fps=FPS, features=feats) as w:
        for _ in range(3):
            w.add_frame(
                {"observation.state": np.zeros(2, np.float32), "action": np.zeros(2, np.float32), "task": "t"}
            )
        w.save_episode()
    with pytest.raises(DatasetError, match="robot_type"):
        label_motions(tmp_path / "x")


# ---------------------------------------------------------------------- overrides
def test_override_log_applies_logs_and_becomes_correction_rows(tmp_path):
    log = MotionOverrideLog()
    assert log.apply(0.1, "move left", None) == "move left" and len(log) == 0
    assert log.apply(0.5, "move left", "move right", source="topic") == "move right"
    assert log.apply(0.6, "move up", "move up") == "move up" and len(log) == 1  # not a replacement
    again = MotionOverrideLog.from_json(log.to_json())
    assert [e.to_dict() for e in again.entries] == [
        {"time": 0.5, "predicted": "move left", "replaced_by": "move right", "source": "topic"}
    ]

    feats = {
        "observation.state": {"dtype": "float32", "shape": [1], "names": None},
        "action": {"dtype": "float32", "shape": [1], "names": None},
    }
    with DatasetWriter.create(tmp_path / "o", fps=FPS, features=feats, language=True) as w:
        for row in log.to_rows():
            w.add_language(row)
        for _ in range(10):
            w.add_frame(
                {"observation.state": np.zeros(1, np.float32), "action": np.zeros(1, np.float32), "task": "t"}
            )
        w.save_episode()
    lang = EmberDataset(tmp_path / "o").language(0)
    assert lang.corrections() == [(0.5, "move right")]
    (row,) = lang.emitted_at(5, style="interjection")
    args = json.loads(row.tool_calls[0]["function"]["arguments"])
    assert args == {"predicted": "move left", "replaced_by": "move right", "source": "topic"}
