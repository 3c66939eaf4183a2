"""The simulator's ground truth as labels: what the learned and zero-shot labelers are measured against.

Named as what it is: these labelers read the simulator's own columns, which a real arm's recordings lack, so they
label simulated datasets only (for measurement, and as a noisy stand-in for a human labeler).

- ``ground_truth``: reward = the simulator's task progress ``sim.progress`` (or, when the dataset has none, its
  success ``sim.success``, then ``next.success``, then ``next.reward``), success = ``sim.success`` (else
  ``next.success``). Label noise, seeded per episode so it does not depend on batching: ``noise_std`` adds
  Gaussian noise to the reward, ``flip_rate`` flips that fraction of the per-frame success labels.
- ``ground_truth_preference``: of two segments, prefers the one with more ground-truth progress gain (last minus
  first frame of ``sim.progress``, or of the success column, or the sum of ``next.reward``); ``flip_rate`` of
  the answers flipped, seeded per pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ember.rewards.base import (
    EpisodeView,
    FrameLabels,
    Labeler,
    LabelerConfig,
    LabelError,
    Preference,
    PreferenceLabeler,
    Segment,
)

PROGRESS, SUCCESS = "sim.progress", "sim.success"
NEXT_SUCCESS, NEXT_REWARD = "next.success", "next.reward"
SOURCES = {"progress": PROGRESS, "sim_success": SUCCESS, "success": NEXT_SUCCESS, "reward": NEXT_REWARD}
"""Source name -> column. ``auto`` takes the first of these the dataset has, in this order."""
AUTO_REWARD = (PROGRESS, SUCCESS, NEXT_SUCCESS, NEXT_REWARD)
AUTO_SUCCESS = (SUCCESS, NEXT_SUCCESS)

Source = Literal["auto", "progress", "sim_success", "success", "reward"]


def _source_columns(source: str, auto: tuple[str, ...]) -> tuple[str, ...]:
    if source == "auto":
        return auto
    if source not in SOURCES:
        raise LabelError(f"unknown ground-truth source {source!r}; use one of auto, {', '.join(SOURCES)}.")
    return (SOURCES[source],)


def _first_present(candidates: tuple[str, ...], have: dict[str, np.ndarray] | dict[str, dict]) -> str | None:
    return next((c for c in candidates if c in have), None)


def _missing_message(what: str, candidates: tuple[str, ...]) -> str:
    return (
        f"the dataset has none of {list(candidates)} for the ground-truth {what}; these are simulator "
        "columns written by `ember collect` (a real arm's dataset has no ground truth: use a model labeler)."
    )


@dataclass
class GroundTruthConfig(LabelerConfig):
    type: str = "ground_truth"
    reward_from: Source = "auto"
    """Which column is the reward: auto (sim.progress, else sim.success, next.success, next.reward), progress
    (sim.progress), sim_success, success (next.success), reward (next.reward)."""
    success_from: Literal["auto", "sim_success", "success", "none"] = "auto"
    """Which column is the success label (auto: sim.success, else next.success); none: write no success."""
    noise_std: float = 0.0
    """Standard deviation of Gaussian noise added to every frame's reward."""
    flip_rate: float = 0.0
    """Fraction of per-frame success labels flipped (0 = exact)."""
    seed: int = 0


class GroundTruthLabeler(Labeler):
    """The simulator's progress / success, with configurable (seeded) label noise."""

    config_class = GroundTruthConfig
    cameras_needed = False

    def __init__(self, config: GroundTruthConfig) -> None:
        super().__init__(config)
        if config.noise_std < 0 or not 0 <= config.flip_rate <= 1:
            raise LabelError("ground_truth: noise_std must be >= 0 and flip_rate in [0, 1].")
        self._reward = _source_columns(config.reward_from, AUTO_REWARD)
        self._success = (
            () if config.success_from == "none" else _source_columns(config.success_from, AUTO_SUCCESS)
        )

    @property
    def optional_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self._reward, *self._success]))

    def check_dataset(self, features: dict[str, dict]) -> None:
        if _first_present(self._reward, features) is None:
            raise LabelError(_missing_message("reward", self._reward))
        if (
            self.config.success_from not in ("auto", "none")
            and _first_present(self._success, features) is None
        ):
            raise LabelError(_missing_message("success", self._success))

    def label(self, episode: EpisodeView) -> FrameLabels:
        cfg = self.config
        name = _first_present(self._reward, episode.columns)
        if name is None:
            raise LabelError(_missing_message("reward", self._reward))
        reward = np.asarray(episode.columns[name], dtype=np.float64).reshape(-1)
        rng = np.random.default_rng([cfg.seed, episode.episode_index])
        noise = rng.standard_normal(reward.shape)  # always drawn, so the flips do not depend on noise_std
        reward = reward + cfg.noise_std * noise
        success = None
        sname = _first_present(self._success, episode.columns)
        if sname is not None:
            success = np.asarray(episode.columns[sname], dtype=np.float64).reshape(-1).clip(0, 1)
            flip = rng.random(success.shape) < cfg.flip_rate
            success = np.where(flip, 1.0 - success, success)
        return FrameLabels(reward, success)


@dataclass
class GroundTruthPreferenceConfig(LabelerConfig):
    type: str = "ground_truth_preference"
    progress_from: Source = "auto"
    """The ground-truth progress: auto (sim.progress, else sim.success, next.success, next.reward) or one of
    progress, sim_success, success, reward (summed over the segment instead of last minus first)."""
    flip_rate: float = 0.0
    """Fraction of answers flipped (A <-> B), seeded per pair: noisy labels for measuring learned models."""
    tie_tolerance: float = 1e-6
    """Gains closer than this are ``equal`` (never flipped)."""
    seed: int = 0


def progress_gain(segment: Segment, candidates: tuple[str, ...] = AUTO_REWARD) -> float:
    """Ground-truth progress made over a segment: last minus first frame of a progress/success column, or the
    sum of ``next.reward``."""
    name = _first_present(candidates, segment.columns)
    if name is None:
        raise LabelError(_missing_message("progress", candidates))
    values = np.asarray(segment.columns[name], dtype=np.float64).reshape(-1)
    if len(values) == 0:
        raise LabelError(f"episode {segment.episode_index}: empty segment [{segment.start}, {segment.end}).")
    return float(values.sum()) if name == NEXT_REWARD else float(values[-1] - values[0])


class GroundTruthPreferenceLabeler(PreferenceLabeler):
    """Prefers the segment with more ground-truth progress gain; ``flip_rate`` of the labels flipped."""

    config_class = GroundTruthPreferenceConfig
    cameras_needed = False

    def __init__(self, config: GroundTruthPreferenceConfig) -> None:
        super().__init__(config)
        if not 0 <= config.flip_rate <= 1:
            raise LabelError("ground_truth_preference: flip_rate must lie in [0, 1].")
        self._progress = _source_columns(config.progress_from, AUTO_REWARD)

    @property
    def optional_columns(self) -> tuple[str, ...]:
        return self._progress

    def check_dataset(self, features: dict[str, dict]) -> None:
        if _first_present(self._progress, features) is None:
            raise LabelError(_missing_message("progress", self._progress))

    def prefer(self, a: Segment, b: Segment) -> Preference:
        cfg = self.config
        diff = progress_gain(a, self._progress) - progress_gain(b, self._progress)
        if abs(diff) <= cfg.tie_tolerance:
            return Preference.EQUAL
        answer = Preference.A if diff > 0 else Preference.B
        rng = np.random.default_rng(
            [cfg.seed, a.episode_index, a.start, a.end, b.episode_index, b.start, b.end]
        )
        if rng.random() < cfg.flip_rate:
            answer = Preference.B if answer is Preference.A else Preference.A
        return answer
