"""Preference pairs of episode segments, and the aligned (chosen, rejected) windows an action-policy DPO trains on.

The pairs file is the one ``ember label --labeler=<preference labeler>`` writes (docs/rewards.md), read through
:mod:`ember.data.preferences` like every reader of it: JSON Lines, or one JSON list, of
``{"episode_a", "start_a", "end_a", "episode_b", "start_b", "end_b", "instruction", "preference", "label", ...}``,
segments being frames ``[start, end)`` within their episode. ``preference`` ``A`` / ``B`` says which is chosen;
``equal`` and ``unparsed`` pairs carry no direction and are skipped (counted).

A pair is comparable only if both episodes ran the same instruction (the same ``task_index``) and that is the
pair's ``instruction``: preferring one behaviour over another is only meaningful for the same command (DPO's
shared prompt). Anything else is a :class:`~ember.data.errors.DatasetError` naming the pair.

Windows are aligned in time: for a pair, one offset ``k`` in ``[0, min(len_a, len_b))`` gives the window at frame
``start_a + k`` of episode a and ``start_b + k`` of episode b, so the chosen and rejected chunks are the two
behaviours at the same stage of the segment. Sampling is a pure function of ``(seed, step)`` (a resumed run draws
the same pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from ember.data.errors import DatasetError
from ember.data.preferences import read_preferences


@dataclass(frozen=True)
class Pair:
    """One directed preference: segment ``chosen`` = (episode, start, end) preferred over ``rejected``."""

    chosen: tuple[int, int, int]
    rejected: tuple[int, int, int]
    instruction: str


def read_pairs(path: str | Path) -> tuple[list[Pair], dict[str, int]]:
    """Directed pairs of a preference file (:func:`ember.data.preferences.read_preferences`) and the count of
    each ``preference`` value (``equal`` / ``unparsed`` are counted, not returned)."""
    pairs, counts = [], {}
    for record in read_preferences(path):
        counts[record.preference] = counts.get(record.preference, 0) + 1
        if record.preference == "A":
            pairs.append(Pair(record.a, record.b, record.instruction))
        elif record.preference == "B":
            pairs.append(Pair(record.b, record.a, record.instruction))
    return pairs, counts


def episode_tasks(dataset: Any) -> dict[int, set[str]]:
    """The instruction(s) each episode of an :class:`~ember.data.EmberDataset` ran."""
    table = dataset.frame_table()
    episodes = table.column("episode_index").to_numpy()
    tasks = table.column("task_index").to_numpy()
    out: dict[int, set[str]] = {}
    for e, t in {(int(e), int(t)) for e, t in zip(episodes, tasks, strict=True)}:
        out.setdefault(e, set()).add(dataset.meta.tasks[t])
    return out


def check_comparable(pairs: Sequence[Pair], dataset: Any) -> None:
    """Every pair's two segments exist, are non-empty, and ran the pair's one instruction; else a DatasetError."""
    tasks = episode_tasks(dataset)
    for i, pair in enumerate(pairs):
        for ep, start, end in (pair.chosen, pair.rejected):
            if ep not in tasks:
                raise DatasetError(
                    f"pair {i} names episode {ep}, which {dataset.root} does not have "
                    f"({dataset.num_episodes} episodes)."
                )
            if not 0 <= start < end <= dataset.episode_length(ep):
                raise DatasetError(
                    f"pair {i}: segment [{start}, {end}) is not inside episode {ep} "
                    f"(length {dataset.episode_length(ep)})."
                )
        a, b = tasks[pair.chosen[0]], tasks[pair.rejected[0]]
        if len(a) != 1 or a != b or pair.instruction not in a:
            raise DatasetError(
                f"pair {i} is not comparable: episode {pair.chosen[0]} ran {sorted(a)}, episode "
                f"{pair.rejected[0]} ran {sorted(b)} and the pair says {pair.instruction!r}; preferences compare "
                "two behaviours for the same instruction: pair episodes of one task (one task_index)."
            )


class PairWindows:
    """Aligned (chosen, rejected) training windows of ``pairs`` from a :class:`~ember.data.WindowDataset`."""

    def __init__(self, pairs: Sequence[Pair], windows: Any, seed: int = 0) -> None:
        if not pairs:
            raise DatasetError("no directed preference pairs (A or B) to train on; label some first.")
        self.pairs, self.windows, self.seed = list(pairs), windows, int(seed)
        dataset = windows.dataset
        offsets, row = {}, 0
        for ep in windows.episodes:  # the window dataset's rows run episode after episode, in this order
            offsets[ep] = row
            row += dataset.episode_length(ep)
        missing = sorted(({p.chosen[0] for p in pairs} | {p.rejected[0] for p in pairs}) - set(offsets))
        if missing:
            raise DatasetError(f"episodes {missing} of the preference pairs are not in the window dataset.")
        self._row_of_episode = offsets

    def indices(self, pair: Pair, k: int) -> tuple[int, int]:
        (ea, sa, _), (eb, sb, _) = pair.chosen, pair.rejected
        return self._row_of_episode[ea] + sa + k, self._row_of_episode[eb] + sb + k

    def noise_seed(self, step: int) -> int:
        """The seed of step ``step``'s noise and time draws, a pure function of (seed, step) like the pairs."""
        return int(np.random.default_rng([self.seed, step, 1]).integers(0, 2**31 - 1))

    def sample(self, n: int, step: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """``n`` pairs (with replacement) and one aligned offset each, a pure function of (seed, step)."""
        rng = np.random.default_rng([self.seed, step])
        chosen, rejected = [], []
        for p in rng.integers(0, len(self.pairs), size=n):
            pair = self.pairs[int(p)]
            k = int(
                rng.integers(0, min(pair.chosen[2] - pair.chosen[1], pair.rejected[2] - pair.rejected[1]))
            )
            i, j = self.indices(pair, k)
            chosen.append(self.windows[i])
            rejected.append(self.windows[j])
        return default_collate(chosen), default_collate(rejected)

    def all_aligned(self, stride: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every pair at every ``stride``-th aligned offset (for evaluating the margin on the training pairs)."""
        chosen, rejected = [], []
        for pair in self.pairs:
            for k in range(
                0, min(pair.chosen[2] - pair.chosen[1], pair.rejected[2] - pair.rejected[1]), stride
            ):
                i, j = self.indices(pair, k)
                chosen.append(self.windows[i])
                rejected.append(self.windows[j])
        return default_collate(chosen), default_collate(rejected)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
