"""The active instruction: the task, temporarily replaced by an operator's correction (Yell At Your Robot, RT-H).

When an operator says "move left" while the robot runs, that correction becomes the instruction the low-level
policy follows for ``hold_s`` seconds, then the task instruction takes over again. The policy node and the
recorder both keep one of these, fed by the same topics, so the instruction recorded with a frame is the one the
policy was conditioned on at that moment.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Correction:
    text: str
    received: float
    """Monotonic receipt time (seconds)."""


_HISTORY = 32
"""Corrections kept for :meth:`LanguageState.active` at past times."""


class LanguageState:
    """Thread-safe holder of the task instruction and the latest correction."""

    def __init__(self, instruction: str = "", hold_s: float = 3.0) -> None:
        self._lock = threading.Lock()
        self._instruction = instruction
        self._corrections: list[Correction] = []
        """Recent corrections, oldest first: a frame filled in late (a recorder catching up) must get the one that
        was active at *its* time, not a newer one."""
        self.hold_s = hold_s
        self.corrections = 0

    def set_instruction(self, text: str) -> None:
        with self._lock:
            self._instruction = text.strip()
            self._corrections = []  # a new task supersedes an older correction

    def add_correction(self, text: str, received: float | None = None) -> Correction | None:
        """Register a correction; blank text is ignored (returns None)."""
        text = text.strip()
        if not text:
            return None
        corr = Correction(text, time.monotonic() if received is None else received)
        with self._lock:
            self._corrections = sorted([*self._corrections, corr], key=lambda c: c.received)[-_HISTORY:]
            self.corrections += 1
        return corr

    @property
    def instruction(self) -> str:
        with self._lock:
            return self._instruction

    def active(self, now: float | None = None) -> str:
        """At monotonic time ``now``: the latest correction received by then while fresher than ``hold_s``, else
        the instruction."""
        now = time.monotonic() if now is None else now
        with self._lock:
            corr = next((c for c in reversed(self._corrections) if c.received <= now), None)
            instruction = self._instruction
        if corr is not None and self.hold_s > 0 and now - corr.received < self.hold_s:
            return corr.text
        return instruction
