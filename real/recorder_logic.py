"""Episodes of (observation, action, instruction, correction) frames written to a LeRobot v3 dataset.

Pure Python (no ROS), so correction alignment and crash safety are unit-tested directly.

Language columns, per frame (YAY Robot / RT-H style corrected demonstrations):

- ``task``: the task instruction (LeRobot's episode-level task);
- ``language.instruction``: the *active* instruction, i.e. what the policy was conditioned on at that frame (an
  operator's correction while it is fresh, else the task; see ``ember.real.language``);
- ``language.correction``: the correction text on the one frame it arrived in, ``""`` on every other frame;
- ``language.correction_timestamp``: when it arrived, in the dataset's clock (seconds from the episode start,
  the same clock as ``timestamp``), ``-1.0`` on frames without one. A correction that arrives between the
  samples of frames ``i-1`` and ``i`` lands on frame ``i`` with a time in ``(timestamp_i - 1/fps, timestamp_i]``.

Crash safety comes from ``DatasetWriter``: every ``save_episode`` is durable before the next episode starts, so a
crash (even SIGKILL) loses at most the episode in progress; a clean shutdown saves it.

A save that fails (a full disk, an I/O error) must not stop a live robot session nor harm what is saved: the writer
puts the files back as they were, and the recorder drops that episode, logs why, counts it in ``stats.failed``
(``stats.last_error`` says what happened) and records the next one, which saves once space is freed. Only when the
writer cannot go on (:attr:`~ember.data.DatasetWriter.failed`) does the recorder stop: :meth:`EpisodeRecorder.add_frame`
then raises :class:`RealError`, and :meth:`~EpisodeRecorder.close` still finalizes cleanly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ember.real.errors import RealError
from ember.real.language import Correction, LanguageState

log = logging.getLogger("ember.recorder")

STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."
NO_CORRECTION_TIME = -1.0


def recording_features(
    state_names: tuple[str, ...], image_shapes: dict[str, tuple[int, int, int]], use_videos: bool
) -> dict[str, dict[str, Any]]:
    """The dataset features: state, cameras, action and the three language columns."""
    names = list(state_names)
    features: dict[str, dict[str, Any]] = {
        STATE_KEY: {"dtype": "float32", "shape": [len(names)], "names": names}
    }
    for cam, shape in image_shapes.items():
        features[IMAGE_PREFIX + cam] = {
            "dtype": "video" if use_videos else "image",
            "shape": list(shape),
            "names": ["height", "width", "channels"],
        }
    features["action"] = {"dtype": "float32", "shape": [len(names)], "names": names}
    features["language.instruction"] = {"dtype": "string", "shape": [1], "names": None}
    features["language.correction"] = {"dtype": "string", "shape": [1], "names": None}
    features["language.correction_timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    return features


@dataclass
class RecorderStats:
    episodes: int = 0
    frames: int = 0
    """Frames in saved episodes."""
    discarded: int = 0
    skipped_frames: int = 0
    """Ticks without a fresh observation (no frame written)."""
    repeated_frames: int = 0
    """Frame slots filled with the previous sample because the recorder fell behind its clock."""
    corrections: int = 0
    corrections_recorded: int = 0
    late_corrections: int = 0
    """Corrections handled after the frame of their time was already written (the recorder lagged by more than
    ``hold_s``): they land on a later frame. Raise the recorder's ``correction_latency_s`` if this grows."""
    episode_frames: int = 0
    failed: int = 0
    """Episodes dropped because their save failed (disk full, I/O error); earlier episodes are intact."""
    last_error: str = ""
    """Why the last save failed ("" if none did)."""
    saved_episodes: list[int] = field(default_factory=list)


class EpisodeRecorder:
    """Turns samples into dataset frames; the dataset is created at the first frame (image sizes known then)."""

    def __init__(
        self,
        root: str | Path,
        fps: int,
        robot: str,
        state_names: tuple[str, ...],
        cameras: tuple[str, ...],
        language: LanguageState,
        use_videos: bool = True,
        hold_s: float = 0.5,
    ) -> None:
        self.root = Path(root)
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise RealError(
                f"dataset folder '{self.root}' already exists and is not empty; record into a new "
                "folder (existing episodes are never modified)."
            )
        self.fps = int(fps)
        self.robot = robot
        self.state_names = state_names
        self.cameras = cameras
        self.language = language
        self.use_videos = use_videos
        self.writer: Any = None
        self.stats = RecorderStats()
        self._pending: list[Correction] = []
        self.hold_s = hold_s
        self._held: list[tuple[dict[str, Any], np.ndarray, float]] = []
        """Sampled frames not yet written (see :meth:`add_frame`)."""
        self._frame_index = 0
        """Frames of the episode in progress, held ones included."""
        self._written = 0
        self.stopped: str | None = None
        """Why recording stopped for good (the dataset writer cannot go on), else None."""

    # ------------------------------------------------------------------------------------------ inputs
    def add_correction(self, text: str, received: float) -> Correction | None:
        """A correction arrived (monotonic time ``received``): it becomes active and waits for its frame."""
        corr = self.language.add_correction(text, received)
        if corr is not None:
            self._pending.append(corr)
            self.stats.corrections += 1
        return corr

    def add_frame(self, observation: dict[str, Any], action: np.ndarray, sampled: float) -> int:
        """Add one frame sampled at monotonic time ``sampled``; returns its frame index.

        The frame is written ``hold_s`` later (or when the episode is saved): a correction stamped with when it
        was sent but handled late by a busy process still lands on the frame of its time.
        """
        if self.stopped:
            raise RealError(f"recording into '{self.root}' stopped: {self.stopped}")
        if self.writer is None:
            self._create(observation)
        self._held.append((observation, np.array(action, copy=True), sampled))
        self._frame_index += 1
        self.stats.episode_frames = self._frame_index
        self._write_held(until=sampled - self.hold_s)
        return self._frame_index - 1

    def _write_held(self, until: float = math.inf) -> None:
        """Write the held frames sampled at or before ``until``, oldest first."""
        while self._held and self._held[0][2] <= until:
            observation, action, sampled = self._held.pop(0)
            self._write(observation, action, sampled)

    def _write(self, observation: dict[str, Any], action: np.ndarray, sampled: float) -> None:
        period = 1.0 / self.fps
        timestamp = self._written / self.fps
        arrived = [c for c in self._pending if c.received <= sampled]
        text, when = "", NO_CORRECTION_TIME
        if arrived:
            self._pending = [c for c in self._pending if c.received > sampled]
            text = " | ".join(c.text for c in arrived)
            lag = min(max(sampled - arrived[0].received, 0.0), period * 0.999)
            when = max(timestamp - lag, 0.0)  # corrections from before the episode start land at 0.0
            self.stats.corrections_recorded += len(arrived)
            late = [c for c in arrived if self._written > 0 and sampled - c.received > 1.5 * period]
            if late:  # before the episode's first frame is not late: those land at 0.0 on purpose
                self.stats.late_corrections += len(late)
                log.warning(
                    "correction %r landed %.2f s after it was sent (its frame was already written, "
                    "hold %.2f s); raise correction_latency_s to keep corrections on their frame",
                    late[0].text,
                    sampled - late[0].received,
                    self.hold_s,
                )
        frame = {
            STATE_KEY: np.asarray(observation[STATE_KEY], dtype=np.float32),
            "action": np.asarray(action, dtype=np.float32),
            "language.instruction": self.language.active(sampled) or self.language.instruction or "",
            "language.correction": text,
            "language.correction_timestamp": np.float32(when),
            "task": self.language.instruction or "unspecified task",
        }
        for cam in self.cameras:
            frame[IMAGE_PREFIX + cam] = observation[IMAGE_PREFIX + cam]
        self.writer.add_frame(frame)
        self._written += 1

    # ------------------------------------------------------------------------------------------ episodes
    def save_episode(self) -> int | None:
        """Make the episode durable; returns its index (None when it had no frames or could not be saved)."""
        if self.writer is None or self._frame_index == 0 or self.stopped:
            return None
        from ember.data.errors import DatasetError  # lazily, as the writer (see _create)

        self._write_held()
        try:
            index = self.writer.save_episode()
        except DatasetError as exc:
            self._save_failed(exc)
            return None
        self.stats.episodes += 1
        self.stats.frames += self._frame_index
        self.stats.saved_episodes.append(index)
        log.info("saved episode %d (%d frames) to %s", index, self._frame_index, self.root)
        self._next()
        return index

    def discard_episode(self) -> None:
        self._held = []
        if self.writer is not None and self._written:
            self.writer.clear_episode()
            self.stats.discarded += 1
        self._next()

    def close(self, save: bool = True, min_frames: int = 1) -> None:
        """Save (or drop) the episode in progress and finalize the dataset (never raises for a failed save)."""
        if self.writer is None:
            return
        if save and self._frame_index >= min_frames:
            self.save_episode()
        self.writer.finalize()

    @property
    def episode_frames(self) -> int:
        return self._frame_index

    # ------------------------------------------------------------------------------------------ internals
    def _save_failed(self, exc: Exception) -> None:
        """Drop the episode that could not be saved and go on (or stop, if the writer cannot)."""
        frames = self._frame_index
        self.stats.failed += 1
        self.stats.last_error = str(exc)
        self.writer.clear_episode()
        self._next()
        if self.writer.failed:
            self.stopped = str(exc)
            log.error("recording stopped: episode not saved (%d frames dropped): %s", frames, exc)
        else:
            log.error("episode not saved (%d frames dropped); recording goes on: %s", frames, exc)

    def _next(self) -> None:
        self._frame_index = self._written = 0
        self.stats.episode_frames = 0

    def _create(self, observation: dict[str, Any]) -> None:
        from ember.data import DatasetWriter

        shapes = {}
        for cam in self.cameras:
            img = observation.get(IMAGE_PREFIX + cam)
            if img is None:
                raise RealError(f"camera '{cam}' has no image in the observation")
            shapes[cam] = tuple(int(s) for s in np.shape(img))
        features = recording_features(self.state_names, shapes, self.use_videos)
        self.writer = DatasetWriter.create(
            self.root, fps=self.fps, features=features, robot_type=self.robot, use_videos=self.use_videos
        )
