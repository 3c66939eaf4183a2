"""Preference files: pairs of episode segments and which one is preferred, read and written in one place.

``ember label --labeler=<preference labeler>`` (``ember.rewards.label``) writes them; preference alignment
(``ember.policies.align.pairs``, DPO on action chunks) and reward models read them. Preferences compare two
segments, so they are not per-frame columns: they go to a JSON Lines file next to the dataset's data,
``<dataset>/labels/<labeler>.preferences.jsonl`` by default, one object per pair::

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

The fields up to ``preference`` are required (:data:`PAIR_FIELDS`): a file written by hand may leave out the
rest (``label`` then follows from ``preference``). The sibling ``<labeler>.preferences.json`` holds the run's
resolved config and summary (counts per answer).

An output path ending in ``.json`` (``--preferences_out=prefs.json``) is written as one JSON list of the same
objects, each also carrying ``"a": [episode, start, end]`` and ``"b": [...]``: the form ``ember train-reward
--preferences=<file.json>`` reads (there ``a``, ``b`` and ``preference`` are enough). :func:`read_preferences`
reads every form.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ember.data.atomic import write_bytes_atomic
from ember.data.errors import DatasetError

LABEL_OF = {"A": 0.0, "B": 1.0, "equal": 0.5, "unparsed": None}
"""``preference`` -> the Bradley-Terry target P(B preferred) (None: no label)."""
PAIR_FIELDS = ("episode_a", "start_a", "end_a", "episode_b", "start_b", "end_b", "instruction", "preference")
"""What every record must hold."""


@dataclass
class PreferenceRecord:
    """One pair of segments, frames ``[start, end)`` of their episodes, and the labeler's preference."""

    episode_a: int
    start_a: int
    end_a: int
    episode_b: int
    start_b: int
    end_b: int
    instruction: str
    preference: str
    label: float | None = None
    answer: str | None = None
    labeler: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.preference not in LABEL_OF:
            raise DatasetError(f"unknown preference {self.preference!r}; expected one of {list(LABEL_OF)}")

    @classmethod
    def of(
        cls, a: Any, b: Any, preference: Any, answer: str | None, labeler: str, fingerprint: str
    ) -> PreferenceRecord:
        """The record of segments ``a`` and ``b`` (anything with ``episode_index``, ``start``, ``end`` and
        ``instruction``, e.g. ``ember.rewards.base.Segment``) and ``preference`` (a string, or an enum whose
        ``value`` is one: ``ember.rewards.base.Preference``)."""
        value = str(getattr(preference, "value", preference))
        return cls(
            a.episode_index,
            a.start,
            a.end,
            b.episode_index,
            b.start,
            b.end,
            a.instruction,
            value,
            LABEL_OF.get(value),
            answer,
            labeler,
            fingerprint,
        )

    @property
    def a(self) -> tuple[int, int, int]:
        """Segment A as ``(episode, start, end)``."""
        return self.episode_a, self.start_a, self.end_a

    @property
    def b(self) -> tuple[int, int, int]:
        """Segment B as ``(episode, start, end)``."""
        return self.episode_b, self.start_b, self.end_b


def as_pair_row(record: PreferenceRecord) -> dict:
    """The record with ``a`` / ``b`` ``[episode, start, end]`` lists added (``ember train-reward``'s form)."""
    return {**asdict(record), "a": list(record.a), "b": list(record.b)}


def write_preferences(path: str | Path, records: Sequence[PreferenceRecord]) -> Path:
    """Write ``records`` atomically (a reader never sees half a file): JSON Lines, or for a ``.json`` path one
    JSON list of :func:`as_pair_row` objects."""
    path = Path(path)
    if path.suffix == ".json":
        text = json.dumps([as_pair_row(r) for r in records], ensure_ascii=False, indent=1) + "\n"
    else:
        text = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records)
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def _from_pair_lists(obj: dict) -> dict:
    """``{"a": [episode, start, end], "b": [...], "preference": ...}`` (the short form ``ember train-reward``
    reads, with no instruction) as the record's own fields."""
    out = dict(obj)
    for side in ("a", "b"):
        if f"episode_{side}" not in out and isinstance(out.get(side), list | tuple) and len(out[side]) == 3:
            out[f"episode_{side}"], out[f"start_{side}"], out[f"end_{side}"] = out[side]
    if "a" in obj and "b" in obj:
        out.setdefault("instruction", "")
    return out


def _record(obj: Any, path: Path, n: int, names: set[str]) -> PreferenceRecord:
    if isinstance(obj, dict):
        obj = _from_pair_lists(obj)
    missing = [f for f in PAIR_FIELDS if f not in obj] if isinstance(obj, dict) else list(PAIR_FIELDS)
    if missing:
        raise DatasetError(
            f"{path}: record {n} lacks {missing}; a preference record holds {list(PAIR_FIELDS)} (docs/rewards.md)."
        )
    try:
        values = {k: v for k, v in obj.items() if k in names}
        for k in PAIR_FIELDS[:6]:
            values[k] = int(values[k])
        values["instruction"], values["preference"] = str(values["instruction"]), str(values["preference"])
        values.setdefault("label", LABEL_OF.get(values["preference"]))
        return PreferenceRecord(**values)
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"{path}: record {n} is not a preference record ({exc}).") from exc
    except DatasetError as exc:
        raise DatasetError(f"{path}: record {n}: {exc}") from None


def read_preferences(path: str | Path) -> list[PreferenceRecord]:
    """The records of a preference file, JSON Lines or one JSON list (a clear error naming the record that is
    not one)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"no preference file at {path}; write one with `ember label --labeler=<preference labeler>` (e.g. "
            "vlm_preference, ground_truth_preference) or by hand (docs/alignment.md)."
        )
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"{path} is not a JSON list of preference records ({exc}).") from exc
        if not isinstance(rows, list):
            raise DatasetError(f"{path} is not a JSON list of preference records.")
        numbered = list(enumerate(rows, start=1))
    else:
        numbered = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    numbered.append((n, json.loads(line)))
                except ValueError as exc:
                    raise DatasetError(f"{path}: line {n} is not a JSON object ({exc}).") from exc
    names = {f.name for f in fields(PreferenceRecord)}
    return [_record(obj, path, n, names) for n, obj in numbered]


__all__ = [
    "LABEL_OF",
    "PAIR_FIELDS",
    "PreferenceRecord",
    "as_pair_row",
    "read_preferences",
    "write_preferences",
]
