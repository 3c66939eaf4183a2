"""``ember label`` and the ground-truth labelers on tiny datasets written by ember's DatasetWriter.

Covers: the columns written (names, dtypes, values, stats) and that the dataset stays valid (``ember data
verify``); ``--column_prefix`` / ``--overwrite``; the ground truth's seeded noise and its fallbacks; the content
cache (a re-run labels nothing, a change labels again); interruptions while labeling and while committing leave
the dataset readable with its original columns untouched; bad input (no model at a path, a missing camera, an
empty instruction, no ground truth) is one LabelError line and the dataset is unchanged; preference files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from rewards_helpers import CAM, LENGTHS, TASKS, ensure_registered, snapshot, write_dataset

from ember.cli import main
from ember.data import EmberDataset, verify
from ember.data.preferences import read_preferences
from ember.registry import LABELERS
from ember.rewards.base import EpisodeView, FrameLabels, Labeler, LabelerConfig, LabelError
from ember.rewards.label import LabelConfig, label, make_labeler_config
from ember.rewards.reading import pick_camera

ensure_registered()


def run(*args: str) -> int:
    return main(["label", *args, "--quiet"])


@pytest.fixture()
def ds_root(tmp_path) -> Path:
    return write_dataset(tmp_path / "ds")


# ------------------------------------------------------------------------------ a labeler for the mechanics
CALLS: list[int] = []
INTERRUPT_AT: list[int] = []
"""Episodes at which the counting labeler raises KeyboardInterrupt (not in its config: the cache key stays)."""


@dataclass
class CountingConfig(LabelerConfig):
    type: str = "counting"
    camera: str = ""
    scale: float = 1.0
    uses_instruction: bool = False


class CountingLabeler(Labeler):
    """Reward = mean brightness of each frame x scale; success = brightness > 100. Records what it labels."""

    config_class = CountingConfig

    def __init__(self, config: CountingConfig) -> None:
        super().__init__(config)
        self.needs_instruction = config.uses_instruction

    def cameras(self, available):
        return pick_camera(self.config.camera, available)

    def label(self, episode: EpisodeView) -> FrameLabels:
        if episode.episode_index in INTERRUPT_AT:
            raise KeyboardInterrupt
        CALLS.append(episode.episode_index)
        (frames,) = episode.images.values()
        brightness = frames.reshape(len(frames), -1).mean(axis=1)
        return FrameLabels(brightness * self.config.scale, (brightness > 100).astype(np.float32))


@pytest.fixture(autouse=True)
def counting_labeler():
    LABELERS.register("counting", CountingLabeler)
    CALLS.clear()
    INTERRUPT_AT.clear()
    yield
    LABELERS.unregister("counting")


# ------------------------------------------------------------------------------ columns
def test_ground_truth_writes_reward_and_success_columns(ds_root):
    before = EmberDataset(ds_root)
    original = {e: before.episode(e) for e in range(before.num_episodes)}
    assert run(f"--dataset={ds_root}") == 0  # ground_truth is the default labeler
    ds = EmberDataset(ds_root)
    assert ds.features["reward.ground_truth"]["dtype"] == "float32"
    assert ds.features["success.ground_truth"]["dtype"] == "float32"
    for e in range(ds.num_episodes):
        ep = ds.episode(e)
        np.testing.assert_allclose(ep["reward.ground_truth"], original[e]["sim.progress"], atol=1e-6)
        np.testing.assert_array_equal(
            ep["success.ground_truth"], original[e]["sim.success"].astype(np.float32)
        )
        for key in ("observation.state", "action", "next.reward", "next.success", CAM):
            np.testing.assert_array_equal(ep[key], original[e][key])
    assert "reward.ground_truth" in ds.meta.stats
    report = verify(ds_root)
    assert report.ok, report.problems
    record = json.loads((ds_root / "labels" / "ground_truth.json").read_text())
    assert record["config"]["labeler"]["type"] == "ground_truth"
    assert record["result"]["columns"] == ["reward.ground_truth", "success.ground_truth"]
    replay = ds_root / "labels" / "ground_truth.config.json"
    assert run(f"--config={replay}", "--column_prefix=replayed") == 0  # the saved config replays the run
    again = EmberDataset(ds_root).episode(1)
    np.testing.assert_array_equal(again["replayed.reward"], again["reward.ground_truth"])


def test_column_prefix_overwrite_keeps_a_bool_success_column_bool(ds_root):
    assert run(f"--dataset={ds_root}", "--column_prefix=next") == 2  # next.reward exists: refused
    assert run(f"--dataset={ds_root}", "--column_prefix=next", "--overwrite") == 0
    ds = EmberDataset(ds_root)
    assert ds.features["next.success"]["dtype"] == "bool"
    ep = ds.episode(0)
    np.testing.assert_allclose(ep["next.reward"], ep["sim.progress"], atol=1e-6)
    assert run(f"--dataset={ds_root}", "--reward_column=r.gt", "--success_column=s.gt") == 0
    assert {"r.gt", "s.gt"} <= set(EmberDataset(ds_root).features)
    # a labeler without a success output never touches (nor is refused by) an existing success column
    assert (
        run(
            f"--dataset={ds_root}",
            "--labeler.success_from=none",
            "--reward_column=r.only",
            "--success_column=next.success",
        )
        == 0
    )
    assert run(f"--dataset={ds_root}", "--reward_column=r.two", "--success_column=next.success") == 2
    assert "r.two" not in EmberDataset(ds_root).features


def test_ground_truth_noise_is_seeded_and_sized(ds_root):
    def labels(**kw):
        cfg = LabelConfig(
            dataset=str(ds_root), labeler=make_labeler_config("ground_truth", **kw), quiet=True, cache=False
        )
        from ember.rewards.label import make_labeler
        from ember.rewards.reading import DatasetReader

        labeler = make_labeler(cfg.labeler)
        reader = DatasetReader(EmberDataset(ds_root), labeler)
        return [labeler.label(reader.episode(e)) for e in range(len(LENGTHS))]

    exact = labels()
    a, b, c = (
        labels(noise_std=0.1, flip_rate=0.25),
        labels(noise_std=0.1, flip_rate=0.25),
        labels(noise_std=0.1, flip_rate=0.25, seed=1),
    )
    noise = np.concatenate([x.reward - y.reward for x, y in zip(a, exact, strict=True)])
    assert 0.05 < noise.std() < 0.15
    np.testing.assert_array_equal(
        np.concatenate([x.reward for x in a]), np.concatenate([x.reward for x in b])
    )
    assert not np.allclose(np.concatenate([x.reward for x in a]), np.concatenate([x.reward for x in c]))
    flips = np.concatenate([x.success != y.success for x, y in zip(a, exact, strict=True)])
    assert 0.05 < flips.mean() < 0.5


def test_ground_truth_falls_back_to_next_columns_and_refuses_without_any(tmp_path):
    root = write_dataset(tmp_path / "nosim", sim=False)
    assert run(f"--dataset={root}") == 0
    ep = EmberDataset(root).episode(1)
    np.testing.assert_array_equal(ep["reward.ground_truth"], ep["next.success"].astype(np.float32))
    np.testing.assert_array_equal(ep["success.ground_truth"], ep["next.success"].astype(np.float32))
    assert run(f"--dataset={root}", "--labeler.reward_from=reward", "--column_prefix=r") == 0
    np.testing.assert_allclose(EmberDataset(root).episode(1)["r.reward"], ep["next.reward"])
    assert run(f"--dataset={root}", "--labeler.reward_from=progress", "--column_prefix=p") == 2


# ------------------------------------------------------------------------------ cache and interruptions
def test_cache_skips_unchanged_episodes_and_misses_on_any_change(ds_root):
    assert run(f"--dataset={ds_root}", "--labeler=counting", "--episodes_per_batch=3") == 0
    assert sorted(CALLS) == [0, 1, 2, 3]
    CALLS.clear()
    assert run(f"--dataset={ds_root}", "--labeler=counting", "--overwrite") == 0
    assert CALLS == []  # unchanged frames, instruction and config: all from the cache
    assert run(f"--dataset={ds_root}", "--labeler=counting", "--labeler.scale=2", "--overwrite") == 0
    assert sorted(CALLS) == [0, 1, 2, 3]  # another config, another fingerprint
    ds = EmberDataset(ds_root)
    np.testing.assert_allclose(
        ds.episode(0)["reward.counting"], 2 * ds.episode(0)[CAM].reshape(8, -1).mean(1), rtol=1e-5
    )
    CALLS.clear()
    assert run(f"--dataset={ds_root}", "--labeler=counting", "--cache=false", "--overwrite") == 0
    assert sorted(CALLS) == [0, 1, 2, 3]


def test_interrupt_while_labeling_leaves_the_dataset_untouched_and_resumes_from_the_cache(ds_root):
    before = snapshot(ds_root)
    INTERRUPT_AT.append(2)
    cfg = LabelConfig(
        dataset=str(ds_root), labeler=make_labeler_config("counting"), episodes_per_batch=1, quiet=True
    )
    with pytest.raises(KeyboardInterrupt):
        label(cfg)
    assert CALLS == [0, 1]
    CALLS.clear()
    INTERRUPT_AT.clear()
    assert snapshot(ds_root) == before
    assert "reward.counting" not in EmberDataset(ds_root).features
    assert run(f"--dataset={ds_root}", "--labeler=counting", "--episodes_per_batch=1") == 0
    assert CALLS == [2, 3]  # 0 and 1 were labeled before the interruption: from the cache
    assert verify(ds_root).ok


def test_interrupt_while_committing_leaves_the_original_columns_readable(ds_root, monkeypatch):
    import ember.data.labels as labels_module

    before = EmberDataset(ds_root)
    original = [before.episode(e) for e in range(before.num_episodes)]
    features = dict(before.features)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(
        labels_module.meta, "write_info", interrupted
    )  # shards rewritten, commit never happens
    with pytest.raises(KeyboardInterrupt):
        label(LabelConfig(dataset=str(ds_root), quiet=True, column_prefix="next", overwrite=True))
    monkeypatch.undo()
    after = EmberDataset(ds_root)
    assert after.features == features
    for e, ep in enumerate(original):
        now = after.episode(e)
        for key in ep:
            np.testing.assert_array_equal(now[key], ep[key])
    assert run(f"--dataset={ds_root}", "--column_prefix=other") == 0  # and it can still be labeled
    assert verify(ds_root).ok


# ------------------------------------------------------------------------------ bad input
def one_line_error(capsys, *args: str) -> str:
    capsys.readouterr()
    assert run(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("ember label: error:"), err
    return err


def test_bad_input_is_one_line_and_changes_nothing(ds_root, tmp_path, capsys):
    before = snapshot(ds_root)
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    err = one_line_error(capsys, f"--dataset={ds_root}", "--labeler=clip", f"--labeler.model_path={empty}")
    assert "holds no model" in err and "--labeler.model_path" in err
    err = one_line_error(
        capsys, f"--dataset={ds_root}", "--labeler=clip", f"--labeler.model_path={tmp_path / 'x'}"
    )
    assert "not a folder" in err
    err = one_line_error(capsys, f"--dataset={ds_root}", "--labeler=counting", "--labeler.camera=wrist")
    assert "'wrist' is not in the dataset" in err and "front" in err
    err = one_line_error(capsys, f"--dataset={ds_root}", "--labeler=no_such_labeler")
    assert "ground_truth" in err  # lists the registered labelers
    assert snapshot(ds_root) == before

    no_task = write_dataset(tmp_path / "no_task", tasks=[" ", "lift", "lift", "lift"])
    before = snapshot(no_task)
    err = one_line_error(
        capsys, f"--dataset={no_task}", "--labeler=counting", "--labeler.uses_instruction=true"
    )
    assert "no instruction" in err and "[0]" in err
    assert snapshot(no_task) == before

    no_cam = write_dataset(tmp_path / "no_cam", camera=False)
    before = snapshot(no_cam)
    err = one_line_error(capsys, f"--dataset={no_cam}", "--labeler=counting")
    assert "no RGB camera" in err
    assert snapshot(no_cam) == before


def test_ground_truth_reads_no_video(ds_root, monkeypatch):
    monkeypatch.setattr(EmberDataset, "decode_video", lambda *a, **k: pytest.fail("decoded a video"))
    assert run(f"--dataset={ds_root}") == 0


# ------------------------------------------------------------------------------ preferences
def test_ground_truth_preferences_file(ds_root):
    assert (
        run(
            f"--dataset={ds_root}",
            "--labeler=ground_truth_preference",
            "--num_pairs=60",
            "--segment_length=4",
        )
        == 0
    )
    path = ds_root / "labels" / "ground_truth_preference.preferences.jsonl"
    records = read_preferences(path)
    assert len(records) == 60
    ds = EmberDataset(ds_root)
    progress = {e: ds.episode(e)["sim.progress"] for e in range(ds.num_episodes)}
    for r in records:
        assert r.end_a - r.start_a == 4 and r.end_b - r.start_b == 4
        assert ds.meta.tasks[0] in r.instruction or r.instruction in TASKS
        assert TASKS[r.episode_a] == TASKS[r.episode_b] == r.instruction
        gain_a = progress[r.episode_a][r.end_a - 1] - progress[r.episode_a][r.start_a]
        gain_b = progress[r.episode_b][r.end_b - 1] - progress[r.episode_b][r.start_b]
        want = "equal" if abs(gain_a - gain_b) <= 1e-6 else ("A" if gain_a > gain_b else "B")
        assert r.preference == want
        assert r.label == {"A": 0.0, "B": 1.0, "equal": 0.5}[want]
    summary = json.loads((ds_root / "labels" / "ground_truth_preference.preferences.json").read_text())
    assert sum(summary["result"]["counts"].values()) == 60 and summary["result"]["counts"]["unparsed"] == 0
    assert run(f"--dataset={ds_root}", "--labeler=ground_truth_preference") == 2  # exists: needs --overwrite
    as_list = ds_root / "prefs.json"  # a .json path: one JSON list, with ember train-reward's "a" / "b" spans
    assert (
        run(
            f"--dataset={ds_root}",
            "--labeler=ground_truth_preference",
            "--num_pairs=60",
            "--segment_length=4",
            f"--preferences_out={as_list}",
        )
        == 0
    )
    rows = json.loads(as_list.read_text())
    assert [row["a"] for row in rows] == [[r.episode_a, r.start_a, r.end_a] for r in records]
    assert [row["b"] for row in rows] == [[r.episode_b, r.start_b, r.end_b] for r in records]
    assert read_preferences(as_list) == records
    assert (ds_root / "prefs.summary.json").is_file()

    flipped = ds_root / "flipped.jsonl"
    args = [
        f"--dataset={ds_root}",
        "--labeler=ground_truth_preference",
        "--num_pairs=400",
        "--segment_length=4",
        "--labeler.flip_rate=0.2",
        "--labeler.tie_tolerance=-1",
    ]
    assert run(*args, f"--preferences_out={flipped}", "--cache=false") == 0
    exact = ds_root / "exact.jsonl"
    assert run(*args[:-2], "--labeler.tie_tolerance=-1", f"--preferences_out={exact}", "--cache=false") == 0
    a, b = read_preferences(flipped), read_preferences(exact)
    assert [(r.episode_a, r.start_a, r.episode_b, r.start_b) for r in a] == [
        (r.episode_a, r.start_a, r.episode_b, r.start_b) for r in b
    ]  # same seeded pairs
    flips = {
        (x.episode_a, x.start_a, x.episode_b, x.start_b): x.preference != y.preference
        for x, y in zip(a, b, strict=True)
    }  # a pair drawn twice is flipped or not both times (seeded)
    assert len(flips) > 100
    assert 0.1 < np.mean(list(flips.values())) < 0.3


def test_a_labeler_config_must_derive_from_labeler_config():
    @dataclass
    class Plain:
        x: int = 0

    class Bad(Labeler):
        config_class = Plain

        def label(self, episode):
            raise AssertionError

    LABELERS.register("bad", Bad)
    try:
        with pytest.raises(Exception, match="LabelerConfig"):
            make_labeler_config("bad")
    finally:
        LABELERS.unregister("bad")
    with pytest.raises(LabelError):
        pick_camera("side", [CAM])
