"""Per-frame language: LeRobot's ``language_persistent`` / ``language_events`` columns, typed.

Why two columns (``lerobot@7427f31:src/lerobot/datasets/language.py``): some language is *state*
("the current subtask is: open the drawer", "move the arm left") that holds from the moment it is
said until it is replaced; some is an *event* that exists only on the frame it happened (an
operator's correction, a VQA pair). LeRobot stores the first kind as a list of rows broadcast to
every frame of the episode, each row with the ``timestamp`` it became active, and the second kind
as a list of rows on the one frame where it was emitted (that frame's ``timestamp`` is its time).

Both columns are declared in ``info.json`` as ``{"dtype": "language", "shape": [1], "names": null}``
and hold ``list<struct<role, content, style, [timestamp], camera, tool_calls>>`` in parquet, so
LeRobot's loader and its recipe renderer read ember datasets unchanged.

Mapping of the robot-learning vocabulary onto styles (what :class:`LanguageRecorder` writes):

- the active *instruction* -> persistent ``subtask`` (role ``user``);
- a *language motion* ("move left", RT-H) -> persistent ``motion`` (role ``assistant``);
- an operator *correction* -> event ``interjection`` (role ``user``) on the first frame at or after
  its arrival time; the instruction it implies is a new persistent row at the *exact* arrival time.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ember.data.errors import DatasetError

LANGUAGE_PERSISTENT = "language_persistent"
LANGUAGE_EVENTS = "language_events"
LANGUAGE_COLUMNS = (LANGUAGE_PERSISTENT, LANGUAGE_EVENTS)
LANGUAGE_DTYPE = "language"

PERSISTENT_STYLES = frozenset({"subtask", "plan", "memory", "motion", "task_aug"})
EVENT_STYLES = frozenset({"interjection", "vqa", "trace"})
VIEW_DEPENDENT_STYLES = frozenset({"vqa", "trace"})
ROLES = frozenset({"user", "assistant", "system", "tool"})


def language_feature() -> dict[str, Any]:
    """The ``info.json`` feature entry of either language column (as LeRobot's ``language_feature_info``)."""
    return {"dtype": LANGUAGE_DTYPE, "shape": [1], "names": None}


def _json_type() -> pa.DataType:
    return pa.json_() if hasattr(pa, "json_") else pa.string()


def _row_type(json_type: pa.DataType | None, timestamped: bool) -> pa.StructType:
    """LeRobot's language row struct; persistent rows carry the ``timestamp`` they became active at."""
    fields = [
        pa.field("role", pa.string(), nullable=False),
        pa.field("content", pa.string()),
        pa.field("style", pa.string()),
    ]
    if timestamped:
        fields.append(pa.field("timestamp", pa.float32(), nullable=False))
    fields += [pa.field("camera", pa.string()), pa.field("tool_calls", pa.list_(json_type or _json_type()))]
    return pa.struct(fields)


def persistent_row_type(json_type: pa.DataType | None = None) -> pa.StructType:
    return _row_type(json_type, timestamped=True)


def event_row_type(json_type: pa.DataType | None = None) -> pa.StructType:
    return _row_type(json_type, timestamped=False)


def column_type(key: str, json_type: pa.DataType | None = None) -> pa.DataType:
    """Arrow type of the ``language_persistent`` or ``language_events`` column (``tool_calls`` items are
    Arrow's JSON extension type, as LeRobot writes them; ``json_type=pa.string()`` gives its storage)."""
    row = persistent_row_type(json_type) if key == LANGUAGE_PERSISTENT else event_row_type(json_type)
    return pa.list_(row)


def to_arrow(key: str, values: Sequence[Any]) -> pa.Array:
    """Per-frame lists of row dicts -> the column (built on string storage, then viewed as JSON)."""
    storage = pa.array(list(values), type=column_type(key, pa.string()))
    return storage.cast(column_type(key))


@dataclass(frozen=True)
class LanguageRow:
    """One language annotation. ``timestamp`` (seconds from the episode start) only for persistent rows.

    ``tool_calls`` are OpenAI-style dicts (``{"type": "function", "function": {...}}``).
    """

    role: str
    content: str | None
    style: str | None
    timestamp: float | None = None
    camera: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] | None = field(default=None, hash=False)

    @property
    def persistent(self) -> bool:
        return self.style in PERSISTENT_STYLES

    def to_arrow_dict(self, persistent: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content, "style": self.style}
        if persistent:
            out["timestamp"] = float(self.timestamp if self.timestamp is not None else 0.0)
        out["camera"] = self.camera
        out["tool_calls"] = (
            None
            if self.tool_calls is None
            else [json.dumps(dict(c), sort_keys=True) for c in self.tool_calls]
        )
        return out

    @classmethod
    def from_arrow_dict(cls, d: Mapping[str, Any]) -> LanguageRow:
        calls = d.get("tool_calls")
        if calls is not None:
            calls = tuple(json.loads(c) if isinstance(c, str) else c for c in calls)
        ts = d.get("timestamp")
        return cls(
            role=d["role"],
            content=d.get("content"),
            style=d.get("style"),
            timestamp=None if ts is None else float(ts),
            camera=d.get("camera"),
            tool_calls=calls,
        )


def as_row(value: LanguageRow | Mapping[str, Any]) -> LanguageRow:
    """Accept a :class:`LanguageRow` or a plain dict with the same fields."""
    if isinstance(value, LanguageRow):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"role", "content", "style", "timestamp", "camera", "tool_calls"}
        if unknown or "role" not in value:
            raise DatasetError(
                f"language row {dict(value)!r}: needs 'role' and only the fields role, content, style, "
                f"timestamp, camera, tool_calls (unknown: {sorted(unknown)})."
            )
        return LanguageRow.from_arrow_dict(value)
    raise DatasetError(f"a language row must be a LanguageRow or a dict, got {type(value).__name__}.")


def validate_row(row: LanguageRow, column: str, camera_keys: Sequence[str]) -> LanguageRow:
    """LeRobot's rules: known style in the right column, camera iff the style is view-dependent."""
    if not isinstance(row.role, str) or row.role not in ROLES:
        raise DatasetError(f"language row {row}: role must be one of {sorted(ROLES)}.")
    if row.content is not None and not isinstance(row.content, str):
        raise DatasetError(f"language row {row}: content must be a str or None.")
    if column == LANGUAGE_PERSISTENT:
        if row.style not in PERSISTENT_STYLES:
            raise DatasetError(
                f"style {row.style!r} is not persistent; persistent styles are {sorted(PERSISTENT_STYLES)} "
                f"(events: {sorted(EVENT_STYLES)} or None)."
            )
        if row.timestamp is None or not math.isfinite(row.timestamp) or row.timestamp < 0:
            raise DatasetError(f"persistent language row {row} needs a finite timestamp >= 0 (seconds).")
    elif row.style is not None and row.style not in EVENT_STYLES:
        raise DatasetError(
            f"style {row.style!r} is not an event style; events are {sorted(EVENT_STYLES)} or None "
            f"(persistent: {sorted(PERSISTENT_STYLES)})."
        )
    if row.style in VIEW_DEPENDENT_STYLES:
        if not row.camera or row.camera not in camera_keys:
            raise DatasetError(
                f"{row.style!r} rows must name one of the dataset's cameras {list(camera_keys)} in 'camera', "
                f"got {row.camera!r}."
            )
    elif row.camera is not None:
        raise DatasetError(f"rows of style {row.style!r} must have camera=None (got {row.camera!r}).")
    return row


def column_for(row: LanguageRow) -> str:
    return LANGUAGE_PERSISTENT if row.style in PERSISTENT_STYLES else LANGUAGE_EVENTS


def frame_at_or_after(timestamp: float, fps: int) -> int:
    """Index of the first frame whose time is >= ``timestamp`` (1 us tolerance for float noise)."""
    return max(0, math.ceil(timestamp * fps - 1e-6 * fps))


@dataclass
class EpisodeLanguage:
    """Language of one episode, read back: persistent rows (by time) and events (by frame index)."""

    fps: int
    persistent: list[LanguageRow]
    events: dict[int, list[LanguageRow]]

    def active_at(self, t: float, style: str, role: str | None = None) -> LanguageRow | None:
        """The row of ``style`` active at time ``t``: the latest one emitted at or before ``t``."""
        rows = [r for r in self.persistent if r.style == style and (role is None or r.role == role)]
        times = [float(r.timestamp or 0.0) for r in rows]
        i = bisect.bisect_right(times, t + 1e-6)
        return rows[i - 1] if i else None

    def emitted_at(
        self, frame_index: int, style: str | None = None, role: str | None = None, camera: str | None = None
    ) -> list[LanguageRow]:
        return [
            r
            for r in self.events.get(frame_index, [])
            if (style is None or r.style == style)
            and (role is None or r.role == role)
            and (camera is None or r.camera == camera)
        ]

    def corrections(self) -> list[tuple[float, str]]:
        """``(time, text)`` of every operator correction (``interjection`` event), in order."""
        out = []
        for frame in sorted(self.events):
            for r in self.events[frame]:
                if r.style == "interjection":
                    out.append((frame / self.fps, r.content or ""))
        return out


def episode_language(
    persistent_col: Sequence[Any] | None, events_col: Sequence[Any] | None, fps: int
) -> EpisodeLanguage:
    """Build :class:`EpisodeLanguage` from an episode's two columns (lists of lists of dicts)."""
    persistent: list[LanguageRow] = []
    if persistent_col:
        first = persistent_col[0] or []
        persistent = sorted((as_row(d) for d in first), key=lambda r: float(r.timestamp or 0.0))
    events: dict[int, list[LanguageRow]] = {}
    for i, rows in enumerate(events_col or []):
        if rows:
            events[i] = [as_row(d) for d in rows]
    return EpisodeLanguage(fps=fps, persistent=persistent, events=events)


class EpisodeLanguageBuffer:
    """What the writer collects for one episode: persistent rows and events keyed by frame index."""

    def __init__(self, fps: int, camera_keys: Sequence[str]) -> None:
        self.fps = fps
        self.camera_keys = list(camera_keys)
        self.persistent: list[LanguageRow] = []
        self.events: dict[int, list[LanguageRow]] = {}

    def copy(self) -> EpisodeLanguageBuffer:
        new = EpisodeLanguageBuffer(self.fps, self.camera_keys)
        new.persistent = list(self.persistent)
        new.events = {k: list(v) for k, v in self.events.items()}
        return new

    def add(
        self,
        row: LanguageRow | Mapping[str, Any],
        frame_index: int,
        timestamp: float | None,
        column: str | None = None,
    ) -> None:
        """Attach ``row`` at ``timestamp`` (seconds) if given, else at frame ``frame_index``.

        ``column``: the column the caller put the row in (a frame's ``language_events``); it must
        match the row's style.
        """
        row = as_row(row)
        if column is not None and column != column_for(row):
            raise DatasetError(
                f"a row of style {row.style!r} belongs in {column_for(row)!r}, not {column!r}."
            )
        column = column_for(row)
        if column == LANGUAGE_PERSISTENT:
            t = row.timestamp if row.timestamp is not None else timestamp
            if t is None:
                t = frame_index / self.fps
            row = LanguageRow(row.role, row.content, row.style, float(t), row.camera, row.tool_calls)
            self.persistent.append(validate_row(row, column, self.camera_keys))
        else:
            if row.timestamp is not None and timestamp is None:
                timestamp = row.timestamp
            row = LanguageRow(row.role, row.content, row.style, None, row.camera, row.tool_calls)
            validate_row(row, column, self.camera_keys)
            frame = frame_at_or_after(timestamp, self.fps) if timestamp is not None else frame_index
            self.events.setdefault(frame, []).append(row)

    def columns(self, length: int) -> dict[str, list[Any]]:
        """The two per-frame columns for an episode of ``length`` frames."""
        late = [f for f in self.events if f >= length]
        if late:
            raise DatasetError(
                f"language events were attached to frame(s) {sorted(late)} but the episode has only {length} "
                "frames; attach corrections before the last add_frame() or drop them."
            )
        persistent = [
            r.to_arrow_dict(True) for r in sorted(self.persistent, key=lambda r: float(r.timestamp or 0.0))
        ]
        events = [[r.to_arrow_dict(False) for r in self.events.get(i, [])] for i in range(length)]
        return {LANGUAGE_PERSISTENT: [persistent] * length, LANGUAGE_EVENTS: events}


def instruction(text: str, timestamp: float | None = None) -> LanguageRow:
    """The instruction in force from ``timestamp`` on (persistent ``subtask``, role ``user``)."""
    return LanguageRow("user", text, "subtask", timestamp)


def motion(text: str, timestamp: float | None = None) -> LanguageRow:
    """A language motion ("move the gripper left") in force from ``timestamp`` (persistent ``motion``)."""
    return LanguageRow("assistant", text, "motion", timestamp)


def correction(text: str, timestamp: float | None = None) -> LanguageRow:
    """An operator correction: an ``interjection`` event on the first frame at/after ``timestamp``."""
    return LanguageRow("user", text, "interjection", timestamp)


def rows_from(values: Iterable[LanguageRow | Mapping[str, Any]]) -> list[LanguageRow]:
    return [as_row(v) for v in values]
