"""Build the observation dict from the latest sensor messages, with ages and staleness checks.

The dict is the observation contract of docs/design.md ("Observation and action").

Pure Python (messages arrive already converted to numpy), so the policy node, the bridge and the recorder share
one implementation and it is unit-tested without ROS. Two clocks matter:

- *receipt* time (this process's monotonic clock): how long ago a message arrived; robust to clock offsets;
- *stamp* time (the header stamp, ROS/wall clock): how old the data is at its source, which catches a driver
  that keeps publishing old data. Compared only when ``check_stamps`` (clocks synchronized, e.g. same machine
  or PTP/chrony).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."


@dataclass
class _Sample:
    value: np.ndarray
    stamp: float
    """Source time (seconds, ROS/wall clock)."""
    received: float
    """Receipt time (seconds, monotonic)."""


@dataclass(frozen=True)
class Observation:
    """One observation dict plus when its parts were measured."""

    data: dict[str, Any]
    """``observation.state`` float32, ``observation.images.<cam>`` uint8 HxWx3, ``task`` str."""
    stamp: float
    """Source stamp of the joint state (seconds): actions computed from it carry it back to the bridge."""
    age_s: float
    """Age of the oldest part (seconds), by the clocks the builder checks."""
    ages: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Staleness:
    """Why no observation could be built: the offending part and its age (inf: never received)."""

    key: str
    age_s: float

    def __str__(self) -> str:
        if math.isinf(self.age_s):
            return f"no {self.key} received yet"
        return f"{self.key} is {self.age_s * 1e3:.0f} ms old"


class ObservationBuilder:
    """Keeps the latest joint state and camera images; builds observations that are fresh enough.

    ``state_names``: the robot's state order; joint states may list joints in any order (and more of them).
    ``max_age_s``: per-part limits, ``state`` for the joint state and ``images`` for cameras (which run slower).
    Thread-safe: ROS callbacks update it while a control loop reads it.
    """

    def __init__(
        self,
        state_names: Sequence[str],
        cameras: Sequence[str] = (),
        *,
        max_state_age_s: float = 0.2,
        max_image_age_s: float = 0.5,
        check_stamps: bool = True,
    ) -> None:
        self.state_names = tuple(state_names)
        self.cameras = tuple(cameras)
        self.max_state_age_s = max_state_age_s
        self.max_image_age_s = max_image_age_s
        self.check_stamps = check_stamps
        self._lock = threading.Lock()
        self._state: _Sample | None = None
        self._images: dict[str, _Sample] = {}
        self._index_cache: tuple[tuple[str, ...], np.ndarray | None] | None = None
        self.task = ""
        """The instruction put under ``task`` (set by whoever listens to the instruction topic)."""
        self.dropped_states = 0
        """Joint states that did not contain every joint of the robot."""

    # ------------------------------------------------------------------------------------------ updates
    def update_state(
        self, names: Sequence[str], positions: Sequence[float], stamp: float, received: float | None = None
    ) -> bool:
        """Store a joint state; False (and counted) when it lacks a robot joint."""
        order = self._order(tuple(names))
        if order is None or len(positions) < len(names):
            self.dropped_states += 1
            return False
        value = np.asarray(positions, dtype=np.float64)[order].astype(np.float32)
        sample = _Sample(value, float(stamp), time.monotonic() if received is None else received)
        with self._lock:
            self._state = sample
        return True

    def clear_state(self) -> None:
        """Forget the latest joint state (its source is no longer trusted): no observation until the next one."""
        with self._lock:
            self._state = None

    def update_image(
        self, camera: str, image: np.ndarray, stamp: float, received: float | None = None
    ) -> None:
        sample = _Sample(image, float(stamp), time.monotonic() if received is None else received)
        with self._lock:
            self._images[camera] = sample

    # ------------------------------------------------------------------------------------------ reads
    def latest_state(self) -> tuple[np.ndarray, float] | None:
        """(state, receipt time) of the last joint state, whatever its age."""
        with self._lock:
            s = self._state
        return None if s is None else (s.value, s.received)

    def state_age(self, now: float | None = None, wall_now: float | None = None) -> float:
        """Age (s) of the latest joint state by receipt and (if checked) stamp; inf when none."""
        with self._lock:
            s = self._state
        return math.inf if s is None else self._age(s, now, wall_now)

    def build(self, now: float | None = None, wall_now: float | None = None) -> Observation | Staleness:
        """The current observation, or the first stale part (the caller holds / skips the cycle)."""
        now = time.monotonic() if now is None else now
        wall_now = time.time() if wall_now is None else wall_now
        with self._lock:
            state, images = self._state, dict(self._images)
        if state is None:
            return Staleness("joint state", math.inf)
        ages = {STATE_KEY: self._age(state, now, wall_now)}
        if ages[STATE_KEY] > self.max_state_age_s:
            return Staleness("joint state", ages[STATE_KEY])
        data: dict[str, Any] = {STATE_KEY: state.value}
        for cam in self.cameras:
            key = IMAGE_PREFIX + cam
            img = images.get(cam)
            if img is None:
                return Staleness(f"image '{cam}'", math.inf)
            ages[key] = self._age(img, now, wall_now)
            if ages[key] > self.max_image_age_s:
                return Staleness(f"image '{cam}'", ages[key])
            data[key] = img.value
        data["task"] = self.task
        return Observation(data=data, stamp=state.stamp, age_s=max(ages.values()), ages=ages)

    # ------------------------------------------------------------------------------------------ helpers
    def _age(self, sample: _Sample, now: float | None, wall_now: float | None) -> float:
        now = time.monotonic() if now is None else now
        age = now - sample.received
        if self.check_stamps:
            wall_now = time.time() if wall_now is None else wall_now
            age = max(age, wall_now - sample.stamp)
        return age

    def _order(self, names: tuple[str, ...]) -> np.ndarray | None:
        cached = self._index_cache
        if cached is not None and cached[0] == names:
            return cached[1]
        index = {n: i for i, n in enumerate(names)}
        order = None
        if all(n in index for n in self.state_names):
            order = np.array([index[n] for n in self.state_names])
        self._index_cache = (names, order)
        return order
