"""Where ``ember train-reward --kind=bradley_terry`` gets its labelled segment pairs, other than the simulator's
progress (:func:`ember.rewards.models.bradley_terry.progress_preferences`): a JSON file of labelled pairs
(``--preferences=<file>``) or a registered preference labeler (``--preferences=labeler:<name>``, e.g. a VLM's)."""

from __future__ import annotations

from typing import Any

from ember.rewards.base import LabelError, Preference


def pairs_from_file(path: str, store: Any) -> list[Any]:
    """The pairs of a preference file (:mod:`ember.data.preferences`; episodes numbered across the datasets in
    order), as global frame ranges."""
    from ember.data.errors import DatasetError
    from ember.data.preferences import read_preferences
    from ember.rewards.models.bradley_terry import SegmentPair

    try:
        records = read_preferences(path)
    except DatasetError as exc:
        raise LabelError(f"--preferences={path}: {exc}") from exc
    slices = store.episode_slices()
    pairs = []
    for record in records:
        segs = []
        for ep, lo, hi in (record.a, record.b):
            if not 0 <= ep < len(slices) or not 0 <= lo < hi <= slices[ep].stop - slices[ep].start:
                raise LabelError(
                    f"--preferences={path}: segment {[ep, lo, hi]} is outside the datasets' episodes"
                )
            segs.append((slices[ep].start + lo, slices[ep].start + hi))
        pairs.append(SegmentPair(segs[0], segs[1], Preference(record.preference)))
    return pairs


def preference_labeler(name: str, config: dict) -> Any:
    """The registered preference labeler ``name``, configured by ``config`` (``--preference_labeler_config``)."""
    from ember.config import load_into
    from ember.registry import LABELERS
    from ember.rewards.base import PreferenceLabeler

    cls = LABELERS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, PreferenceLabeler)):
        raise LabelError(f"--preferences=labeler:{name}: {name!r} is not a preference labeler")
    return cls(load_into(cls.config_class(), config))


def pairs_from_labeler(labeler: Any, store: Any, raw: list[Any]) -> list[Any]:
    """Asks ``labeler`` about each pair of (global) frame ranges, as :class:`~rewards.base.Segment`\\ s of their
    episodes (frames within the episode, its cameras and the columns it reads)."""
    from ember.rewards.base import Segment
    from ember.rewards.models.bradley_terry import SegmentPair

    start = store.episode_start()

    def segment(span: tuple[int, int]) -> Segment:
        lo, hi = span
        first = int(start[lo])
        return Segment(
            int(store.episode[lo]),
            lo - first,
            hi - first,
            store.instructions[lo],
            {cam: store.images[cam][lo:hi] for cam in store.images},
            columns={c: v[lo:hi] for c, v in store.columns.items()},
        )

    answers = labeler.prefer_batch([(segment(a), segment(b)) for a, b in raw])
    return [SegmentPair(a, b, p) for (a, b), p in zip(raw, answers, strict=True)]
