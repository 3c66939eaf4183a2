"""A Bradley-Terry reward model learned from preferences over segment pairs, and its labeler ``bradley_terry``.

RL-VLM-F and "Real-World Offline RL from VLM Feedback": a labeler (a VLM, a person, the simulator) says which of two
segments makes more progress on the instruction; a per-frame reward r(frame, instruction) is fitted so that

    P(A > B) = sigmoid(sum_{t in A} r_t - sum_{t in B} r_t)

by binary cross-entropy against the label: 1 for A, 0 for B, 0.5 for "equal"; unparsed answers are dropped, never
guessed. Label smoothing ``eps`` moves the targets to ``(1 - eps) * y + eps / 2``, which bounds the loss of a label
that is wrong (flipped by a noisy labeler). The network is the shared
:class:`~rewards.models.network.FrameRewardNet` with one output.

Preferences come from any :class:`~rewards.base.PreferenceLabeler` (a VLM's, operator corrections), a JSON file of
labelled pairs, or the simulator's ``sim.progress`` with flips (:func:`progress_preferences`), the measured case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ember.rewards.base import (
    EpisodeView,
    FrameLabels,
    LabelerConfig,
    LabelError,
    Preference,
)
from ember.rewards.models.network import RewardModel, RewardModelLabeler

TARGETS = {Preference.A: 1.0, Preference.B: 0.0, Preference.EQUAL: 0.5}
"""Training target P(A > B) of each answer (``UNPARSED`` has none: such pairs are dropped)."""


def bradley_terry_loss(
    return_a: Tensor, return_b: Tensor, target: Tensor, label_smoothing: float = 0.0
) -> Tensor:
    """Mean BCE of ``sigmoid(return_a - return_b)`` against ``target`` (1 = A preferred, 0 = B, 0.5 = equal),
    the targets smoothed to ``(1 - eps) * target + eps / 2``."""
    if not 0.0 <= label_smoothing < 1.0:
        raise LabelError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    y = target.float() * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return F.binary_cross_entropy_with_logits(return_a - return_b, y)


@dataclass(frozen=True)
class SegmentPair:
    """Two ``[start, end)`` frame ranges (global frame indices of a FrameStore) and the label."""

    a: tuple[int, int]
    b: tuple[int, int]
    preference: Preference


def sample_segments(
    episode_slices: Sequence[slice], groups: np.ndarray, n: int, length: int, rng: np.random.Generator
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``n`` pairs of segments of ``length`` frames (shorter episodes give their whole length), the two segments
    of a pair from different episodes of the same group (dataset = task) when it has several."""
    by_group: dict[int, list[int]] = {}
    for i, s in enumerate(episode_slices):
        by_group.setdefault(int(groups[s.start]), []).append(i)
    keys = sorted(by_group)
    pairs = []
    for _ in range(n):
        eps = by_group[keys[int(rng.integers(len(keys)))]]
        i = eps[int(rng.integers(len(eps)))]
        j = i
        while j == i and len(eps) > 1:
            j = eps[int(rng.integers(len(eps)))]
        seg = []
        for e in (i, j):
            s = episode_slices[e]
            span = s.stop - s.start
            start = s.start + int(rng.integers(0, max(1, span - length + 1)))
            seg.append((start, min(s.stop, start + length)))
        pairs.append((seg[0], seg[1]))
    return pairs


def progress_preferences(
    pairs: Sequence[tuple[tuple[int, int], tuple[int, int]]],
    progress: np.ndarray,
    flip_rate: float = 0.0,
    tie_margin: float = 0.0,
    rng: np.random.Generator | None = None,
) -> list[SegmentPair]:
    """The simulator's answer: the segment with the larger summed ``progress`` (per frame, averaged over the
    segment's length so unequal lengths compare fairly) is preferred; within ``tie_margin`` they are equal. With
    ``flip_rate`` each A/B answer is swapped with that probability (a noisy labeler)."""
    rng = rng or np.random.default_rng(0)
    out = []
    for a, b in pairs:
        diff = float(progress[a[0] : a[1]].mean() - progress[b[0] : b[1]].mean())
        pref = Preference.EQUAL if abs(diff) <= tie_margin else Preference.A if diff > 0 else Preference.B
        if pref is not Preference.EQUAL and rng.random() < flip_rate:
            pref = Preference.B if pref is Preference.A else Preference.A
        out.append(SegmentPair(a, b, pref))
    return out


class BradleyTerryModel(RewardModel):
    """Outputs (B, 1): the per-frame reward."""

    model_type = "bradley_terry"

    def segment_returns(self, images: Mapping[str, Tensor], language: Tensor, lengths: Tensor) -> Tensor:
        """Per-frame rewards of concatenated segments (images (sum L, K, C, H, W), language (sum L, D)) summed per
        segment, scaled to the segment's mean x the longest length so unequal lengths compare by average."""
        r = self.raw(images, language)[:, 0]
        seg = torch.repeat_interleave(torch.arange(len(lengths), device=r.device), lengths)
        sums = torch.zeros(len(lengths), device=r.device, dtype=r.dtype).index_add_(0, seg, r)
        return sums / lengths.to(r.dtype) * lengths.max().to(r.dtype)

    @torch.no_grad()
    def predict(
        self, images: Mapping[str, np.ndarray], instruction: str, batch_size: int = 256
    ) -> np.ndarray:
        return (
            self.predict_episode(images, instruction, batch_size)[:, 0]
            .float()
            .cpu()
            .numpy()
            .astype(np.float32)
        )


@dataclass
class BradleyTerryLabelerConfig(LabelerConfig):
    type: str = "bradley_terry"
    path: str = ""
    """Folder written by ``ember train-reward --kind=bradley_terry`` (its run folder or its ``model/``)."""
    batch_size: int = 256
    device: str = "cpu"


class BradleyTerryLabeler(RewardModelLabeler):
    """``--labeler=bradley_terry --labeler.path=DIR``: the learned per-frame reward (no success probability:
    a preference model's reward has no calibrated "done" threshold)."""

    config_class = BradleyTerryLabelerConfig
    needs_instruction = True

    def __init__(self, config: BradleyTerryLabelerConfig | None = None) -> None:
        config = config or BradleyTerryLabelerConfig()
        super().__init__(config)
        self._load(BradleyTerryModel, config.path, config.device)

    def label(self, episode: EpisodeView) -> FrameLabels:
        instruction = self.instruction(episode)
        return FrameLabels(reward=self.model.predict(episode.images, instruction, self.config.batch_size))
