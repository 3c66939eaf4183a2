"""Operator overrides of RT-H motions: the predicted motion replaced at inference, logged and written as corrections.

``VLAPolicy.select_action(..., motion_override=...)`` (or the ROS correction topic) replaces the motion the policy
predicted; :class:`MotionOverrideLog` keeps each replacement of an episode and turns them into ``interjection``
rows for ``ember.data.add_language``, so learning from interventions sees what was predicted and what replaced it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ember.data.language import LanguageRow, correction


@dataclass(frozen=True)
class MotionOverride:
    """An operator (or a scripted test) replaced the predicted motion at ``time`` (seconds from episode start)."""

    time: float
    predicted: str
    replaced_by: str
    source: str = "argument"
    """``argument`` (select_action's override), ``topic`` (the ROS correction topic), ``script``..."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MotionOverrideLog:
    """Overrides of one episode, in order: kept in a rollout's policy outputs and written as correction rows.

    A correction row is the operator's own words (the replacing motion) as an ``interjection`` event, the
    same row ``ember correct`` -> recorder gives a typed correction, so one dataset holds both; what the policy
    had predicted travels in the row's ``tool_calls`` (``override_motion``) for learning from interventions.
    """

    def __init__(self) -> None:
        self.entries: list[MotionOverride] = []

    def __len__(self) -> int:
        return len(self.entries)

    def record(
        self, time_s: float, predicted: str, replaced_by: str, source: str = "argument"
    ) -> MotionOverride:
        entry = MotionOverride(float(time_s), str(predicted), str(replaced_by), str(source))
        self.entries.append(entry)
        return entry

    def apply(self, time_s: float, predicted: str, override: str | None, source: str = "argument") -> str:
        """The motion to condition on: ``override`` when given (logged if it differs), else ``predicted``."""
        if override is None or override == "":
            return predicted
        if override != predicted:
            self.record(time_s, predicted, override, source)
        return override

    def to_rows(self) -> list[LanguageRow]:
        """``interjection`` events (``ember.data.correction``) at each override's time, for ``add_language``."""
        out = []
        for e in self.entries:
            base = correction(e.replaced_by, e.time)
            call = {
                "type": "function",
                "function": {
                    "name": "override_motion",
                    "arguments": json.dumps(
                        {"predicted": e.predicted, "replaced_by": e.replaced_by, "source": e.source}
                    ),
                },
            }
            out.append(LanguageRow(base.role, base.content, base.style, base.timestamp, None, (call,)))
        return out

    def to_json(self) -> str:
        return json.dumps([e.to_dict() for e in self.entries])

    @classmethod
    def from_json(cls, text: str) -> MotionOverrideLog:
        log = cls()
        for d in json.loads(text):
            log.record(d["time"], d["predicted"], d["replaced_by"], d.get("source", "argument"))
        return log


__all__ = ["MotionOverride", "MotionOverrideLog"]
