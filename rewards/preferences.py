"""Preference files: what ``ember label --labeler=<preference labeler>`` writes, and reward models read.

Preferences compare two segments, so they are not per-frame columns: they go to a JSON Lines file next to the
dataset's data, ``<dataset>/labels/<labeler>.preferences.jsonl`` by default, one object per pair::

    {"episode_a": 3, "start_a": 10, "end_a": 35, "episode_b": 7, "start_b": 0, "end_b": 25,
     "instruction": "lift the cube", "preference": "B", "label": 1.0,
     "answer": "1", "labeler": "vlm_preference", "fingerprint": "3f0c..."}

- ``episode_*`` / ``start_*`` / ``end_*``: the two segments, frames ``[start, end)`` of that episode (episode
  indices and frame offsets within the episode, as in ``meta/episodes``).
- ``preference``: ``A``, ``B``, ``equal`` (the labeler saw no difference, or was unsure: RL-VLM-F's ``-1``) or
  ``unparsed`` (its answer could not be read; kept and counted, never guessed).
- ``label``: the Bradley-Terry target, P(B preferred): 0.0 (A), 1.0 (B), 0.5 (equal), null (unparsed: skip it).
- ``answer``: the labeler's raw answer text where it has one (generative VLMs), else null.
- ``labeler`` / ``fingerprint``: who labeled it (the fingerprint changes with the labeler's config and weights).

The sibling ``<labeler>.preferences.json`` holds the run's resolved config and summary (counts per answer).

An output path ending in ``.json`` (``--preferences_out=prefs.json``) is written as one JSON list of the same
objects, each also carrying ``"a": [episode, start, end]`` and ``"b": [...]``: the form ``ember train-reward
--preferences=<file.json>`` reads. :func:`read_preferences` reads both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ember.rewards.base import LabelError, Preference, Segment

LABEL_OF = {"A": 0.0, "B": 1.0, "equal": 0.5, "unparsed": None}


@dataclass
class PreferenceRecord:
    episode_a: int
    start_a: int
    end_a: int
    episode_b: int
    start_b: int
    end_b: int
    instruction: str
    preference: str
    label: float | None
    answer: str | None
    labeler: str
    fingerprint: str

    @classmethod
    def of(
        cls,
        a: Segment,
        b: Segment,
        preference: str | Preference,
        answer: str | None,
        labeler: str,
        fingerprint: str,
    ) -> PreferenceRecord:
        value = preference.value if isinstance(preference, Preference) else str(preference)
        if value not in LABEL_OF:
            raise LabelError(f"unknown preference {value!r}; expected one of {list(LABEL_OF)}")
        return cls(
            a.episode_index,
            a.start,
            a.end,
            b.episode_index,
            b.start,
            b.end,
            a.instruction,
            value,
            LABEL_OF[value],
            answer,
            labeler,
            fingerprint,
        )


def as_pair_row(record: PreferenceRecord) -> dict:
    """The record with ``a`` / ``b`` ``[episode, start, end]`` lists added (``ember train-reward``'s form)."""
    return {
        **asdict(record),
        "a": [record.episode_a, record.start_a, record.end_a],
        "b": [record.episode_b, record.start_b, record.end_b],
    }


def write_preferences(path: str | Path, records: list[PreferenceRecord]) -> Path:
    """Write ``records`` atomically (a reader never sees half a file): JSON Lines, or for a ``.json`` path one
    JSON list of :func:`as_pair_row` objects."""
    from ember.data.atomic import write_bytes_atomic

    path = Path(path)
    if path.suffix == ".json":
        text = json.dumps([as_pair_row(r) for r in records], ensure_ascii=False, indent=1) + "\n"
    else:
        text = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records)
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def read_preferences(path: str | Path) -> list[PreferenceRecord]:
    """The records of a preference file (a clear error naming the line that is not one)."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(
            f"no preference file at {path}; write one with `ember label --labeler=<preference "
            "labeler>` (e.g. vlm_preference, ground_truth_preference)."
        )
    names = {f.name for f in fields(PreferenceRecord)}
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            rows = list(enumerate(json.loads(text), start=1))
        except (ValueError, TypeError) as exc:
            raise LabelError(f"{path} is not a JSON list of preference records ({exc}).") from exc
    else:
        rows = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    records = []
    for n, row in rows:
        try:
            obj = json.loads(row) if isinstance(row, str) else row
            records.append(PreferenceRecord(**{k: v for k, v in obj.items() if k in names}))
        except (ValueError, TypeError, AttributeError) as exc:
            raise LabelError(f"{path}: record {n} is not a preference record ({exc}).") from exc
    return records
