"""The planner's training data from an ember dataset's language columns: SFT examples and correction preferences.

Read from LeRobot's language columns (:mod:`ember.data.language`):

- a language *motion* ("move left") is a persistent ``motion`` row in force from its timestamp; every time the
  motion changes is one SFT example: the prompt (instruction in force, scene summary at that frame) and the motion;
- an operator *correction* is an ``interjection`` event (what ``ember correct`` / ``ember.real.recorder_logic`` store, on the
  first frame at or after its arrival). Its preference pair is the correction (chosen) over the motion it replaced
  (rejected: the motion in force just before the correction's time), with the prompt at the correction's frame.
  Corrections that are not motions (``motions`` given: not in the vocabulary, e.g. "now the blue one", which
  changes the instruction) and those equal to the motion in force carry no motion preference and are skipped.

Chosen and rejected share one prompt by construction (the same instruction and scene), which is what makes the
pair comparable.

The scene summary is text: by default the named numbers of ``observation.environment_state`` (else
``observation.state``) at the frame, two decimals (``cube_dx=0.12 gripper=0.00``); pass ``summarize`` for another
rendering (a captioner, a VLM's description).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ember.data.errors import DatasetError
from ember.data.language import frame_at_or_after
from ember.vla.planner.model import completion_text, prompt_text

Summarize = Callable[[Mapping[str, Any], int], str]
"""``(episode columns, frame index) -> scene text``."""

SCENE_KEYS = ("observation.environment_state", "observation.state")


def numeric_summary(features: Mapping[str, Any]) -> Summarize:
    """The default scene summary: named values of the first of :data:`SCENE_KEYS` the dataset has."""
    key = next((k for k in SCENE_KEYS if k in features), None)
    if key is None:
        raise DatasetError(f"no {list(SCENE_KEYS)} to summarize the scene from; pass summarize=...")
    names = features[key].get("names") or [
        f"{key.rsplit('.', 1)[-1]}_{i}" for i in range(features[key]["shape"][0])
    ]

    def summarize(episode: Mapping[str, Any], frame: int) -> str:
        values = np.asarray(episode[key][frame], dtype=np.float64).reshape(-1)
        return " ".join(f"{n}={v:.2f}" for n, v in zip(names, values, strict=True))

    return summarize


def _instruction(lang: Any, t: float, episode: Mapping[str, Any], frame: int, before: bool) -> str:
    row = lang.active_at(t - 1e-3 if before else t, "subtask")
    return row.content if row is not None and row.content else str(episode["task"][frame])


def _motion_before(lang: Any, t: float) -> str | None:
    rows = [r for r in lang.persistent if r.style == "motion" and float(r.timestamp or 0.0) < t - 1e-6]
    return rows[-1].content if rows else None


def planner_examples(
    dataset: Any, summarize: Summarize | None = None, episodes: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """SFT examples ``{"prompt", "completion", "motion", "episode", "frame"}``, one per motion change."""
    summarize = summarize or numeric_summary(dataset.features)
    out = []
    for e in episodes if episodes is not None else range(dataset.num_episodes):
        lang, episode = dataset.language(e), dataset.episode(e)
        for row in (r for r in lang.persistent if r.style == "motion" and r.content):
            t = float(row.timestamp or 0.0)
            frame = min(frame_at_or_after(t, dataset.fps), dataset.episode_length(e) - 1)
            prompt = prompt_text(
                _instruction(lang, t, episode, frame, before=False), summarize(episode, frame)
            )
            out.append(
                {
                    "prompt": prompt,
                    "completion": completion_text(row.content),
                    "motion": row.content,
                    "episode": e,
                    "frame": frame,
                }
            )
    return out


def correction_pairs(
    dataset: Any,
    summarize: Summarize | None = None,
    motions: Sequence[str] | None = None,
    episodes: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Preference pairs ``{"prompt", "chosen", "rejected", "episode", "frame"}``: each operator correction over
    the motion it replaced (module docstring)."""
    if not dataset.has_language:
        raise DatasetError(
            f"{dataset.root} has no language columns: record corrections with `ember correct` "
            "(real.recorder_logic) or DatasetWriter(language=True)."
        )
    summarize = summarize or numeric_summary(dataset.features)
    vocabulary = set(motions) if motions is not None else None
    out = []
    for e in episodes if episodes is not None else range(dataset.num_episodes):
        lang = dataset.language(e)
        corrections = lang.corrections()
        if not corrections:
            continue
        episode = dataset.episode(e)
        for t, text in corrections:
            replaced = _motion_before(lang, t)
            if replaced is None or replaced == text or (vocabulary is not None and text not in vocabulary):
                continue
            frame = min(frame_at_or_after(t, dataset.fps), dataset.episode_length(e) - 1)
            prompt = prompt_text(
                _instruction(lang, t, episode, frame, before=True), summarize(episode, frame)
            )
            out.append(
                {
                    "prompt": prompt,
                    "chosen": completion_text(text),
                    "rejected": completion_text(replaced),
                    "episode": e,
                    "frame": frame,
                }
            )
    return out
