"""One preference file format (ember.data.preferences) for every reader: `ember label` writes it, DPO pairs and
`ember train-reward --preferences=<file>` read it, in its long (JSON Lines) and short (`a`/`b` lists) forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ember.data.errors import DatasetError
from ember.data.preferences import PreferenceRecord, read_preferences, write_preferences
from ember.rewards.base import LabelError, Preference
from ember.rewards.models.preference_sources import pairs_from_file


class _Store:
    """Two episodes of 10 and 6 frames, numbered across the datasets as train-reward's frame store does."""

    def episode_slices(self) -> list[slice]:
        return [slice(0, 10), slice(10, 16)]


def test_written_records_read_back_in_both_forms(tmp_path: Path) -> None:
    records = [PreferenceRecord(0, 1, 5, 1, 0, 4, "lift the cube", "B", 1.0, "2", "vlm", "f00")]
    for name in ("p.preferences.jsonl", "p.json"):
        assert read_preferences(write_preferences(tmp_path / name, records)) == records


def test_train_reward_reads_the_short_form_and_the_labelers_file_alike(tmp_path: Path) -> None:
    short = tmp_path / "short.json"
    short.write_text(json.dumps([{"a": [0, 2, 6], "b": [1, 0, 3], "preference": "A"}]))
    long = write_preferences(tmp_path / "long.json", [PreferenceRecord(0, 2, 6, 1, 0, 3, "lift", "A")])
    for path in (short, long):
        (pair,) = pairs_from_file(str(path), _Store())
        assert (pair.a, pair.b, pair.preference) == ((2, 6), (10, 13), Preference.A)


def test_bad_files_name_what_is_wrong(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps([{"a": [1, 0, 9], "b": [0, 0, 3], "preference": "B"}]))
    with pytest.raises(LabelError, match="outside the datasets' episodes"):
        pairs_from_file(str(outside), _Store())
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps([{"a": [0, 0, 2], "b": [0, 2, 4], "preference": "maybe"}]))
    with pytest.raises(LabelError, match="record 1.*unknown preference 'maybe'"):
        pairs_from_file(str(unknown), _Store())
    with pytest.raises(DatasetError, match="no preference file"):
        read_preferences(tmp_path / "missing.jsonl")
