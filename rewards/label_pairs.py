"""``ember label`` with a preference labeler (:class:`~rewards.base.PreferenceLabeler`): segment pairs of the same
instruction (or seed) are sampled, compared in batches and written to a preference file."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ember.errors import ConfigError
from ember.rewards.base import LabelError, PreferenceLabeler
from ember.rewards.label_config import (
    LABELS_DIR,
    LabelConfig,
    LabelResult,
    labeler_name,
    progress_bar,
    write_record,
)

PAIRS_WITHIN = ("instruction", "seed")


def episode_seeds(reader: Any) -> list[int]:
    """Each episode's env seed (``sim.seed``, the same on every frame of an episode); a LabelError when the
    dataset has none."""
    ds = reader.ds
    if "sim.seed" not in ds.features:
        raise LabelError(
            f"{ds.root} has no sim.seed column, so rollouts of one seed cannot be paired; record them "
            "with ember eval --record (or ember collect) of this version, or use --pairs_within=instruction."
        )
    table = ds.frame_table().select(["episode_index", "sim.seed"])
    episodes = np.asarray(table.column("episode_index").to_numpy(), dtype=np.int64)
    seeds = np.asarray(
        [np.asarray(v).reshape(-1)[0] for v in table.column("sim.seed").to_pylist()], dtype=np.int64
    )
    out = np.full(ds.num_episodes, -1, dtype=np.int64)
    out[episodes] = seeds
    return out.tolist()


def sample_pairs(
    reader: Any, num_pairs: int, segment_length: int, seed: int, within: str = "instruction"
) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """``num_pairs`` pairs of ``(episode, start, end)`` segments with the same instruction (and, ``within="seed"``,
    the same env seed), seeded.

    Two different episodes of one group when it has several, else two different stretches of one episode (only
    by instruction: a seed group of one episode is left out). A group is drawn in proportion to its episodes' count.
    """
    if within not in PAIRS_WITHIN:
        raise ConfigError(f"--pairs_within must be one of {PAIRS_WITHIN}, got {within!r}")
    rng = np.random.default_rng(seed)
    seeds = episode_seeds(reader) if within == "seed" else None
    by_task: dict[Any, list[int]] = {}
    for i, text in enumerate(reader.instructions):
        if reader.length(i) > 0:
            by_task.setdefault(text if seeds is None else (text, seeds[i]), []).append(i)
    if seeds is not None:
        by_task = {k: v for k, v in by_task.items() if len(v) >= 2}
        if not by_task:
            raise LabelError(
                f"{reader.ds.root} has no two episodes of one seed; record several rollouts per seed "
                "(ember eval --rollouts_per_seed=K)."
            )
    if not by_task:
        raise LabelError(f"{reader.ds.root} has no episodes to compare.")
    tasks = sorted(by_task)
    weights = np.array([len(by_task[t]) for t in tasks], dtype=np.float64)
    pairs = []
    for _ in range(num_pairs):
        eps = by_task[tasks[rng.choice(len(tasks), p=weights / weights.sum())]]
        if len(eps) >= 2:
            ea, eb = (int(e) for e in rng.choice(eps, size=2, replace=False))
        else:
            ea = eb = eps[0]
        a = _segment(rng, ea, reader.length(ea), segment_length)
        b = _segment(rng, eb, reader.length(eb), segment_length)
        for _ in range(10):  # within one episode: two different stretches where the episode allows it
            if b != a:
                break
            b = _segment(rng, eb, reader.length(eb), segment_length)
        pairs.append((a, b))
    return pairs


def _segment(
    rng: np.random.Generator, episode: int, length: int, segment_length: int
) -> tuple[int, int, int]:
    n = length if segment_length <= 0 else min(segment_length, length)
    start = int(rng.integers(0, length - n + 1))
    return episode, start, start + n


def label_preferences(cfg: LabelConfig, labeler: PreferenceLabeler, reader: Any, cache: Any) -> LabelResult:
    """Sample ``cfg.num_pairs`` segment pairs, ask ``labeler`` (cached answers from ``cache``), write the file."""
    from ember.data.preferences import PreferenceRecord, write_preferences
    from ember.rewards.cache import pair_key
    from ember.rewards.reading import SegmentReader

    ds = reader.ds
    name = labeler_name(cfg.labeler)
    out = (
        Path(cfg.preferences_out)
        if cfg.preferences_out
        else ds.root / LABELS_DIR / f"{name}.preferences.jsonl"
    )
    if out.exists() and not cfg.overwrite:
        raise LabelError(
            f"{out} already exists; pass --overwrite to replace it, or --preferences_out=<file>."
        )
    if cfg.num_pairs < 1:
        raise ConfigError("--num_pairs must be >= 1")
    pairs = sample_pairs(reader, cfg.num_pairs, cfg.segment_length, cfg.seed, cfg.pairs_within)
    pairs.sort(
        key=lambda p: (p[0][0], p[1][0])
    )  # episodes together: fewer decodes (the output keeps this order)
    fingerprint = labeler.fingerprint()
    segments = SegmentReader(reader)
    records: list[PreferenceRecord] = []
    cached = frames = 0
    t0 = time.perf_counter()
    bar = progress_bar(len(pairs), f"label {name}", cfg.quiet, unit="pair")
    try:
        for lo in range(0, len(pairs), cfg.episodes_per_batch):
            chunk = pairs[lo : lo + cfg.episodes_per_batch]
            segs = [(segments.segment(*a), segments.segment(*b)) for a, b in chunk]
            keys = [pair_key(fingerprint, a, b) for a, b in segs]
            found = [cache.get_json(k) for k in keys]
            todo = [j for j, got in enumerate(found) if got is None]
            if todo:
                answers = labeler.prefer_batch([segs[j] for j in todo])
                raw = list(getattr(labeler, "last_answers", None) or [None] * len(todo))
                if len(answers) != len(todo):
                    raise LabelError(
                        f"{name}: prefer_batch returned {len(answers)} answers for {len(todo)} pairs"
                    )
                for j, answer, text in zip(todo, answers, raw, strict=True):
                    found[j] = {"preference": answer.value, "answer": text}
                    cache.put_json(keys[j], found[j])
            cached += len(chunk) - len(todo)
            for (a, b), got in zip(segs, found, strict=True):
                records.append(
                    PreferenceRecord.of(a, b, got["preference"], got.get("answer"), name, fingerprint)
                )
                frames += (a.end - a.start) + (b.end - b.start)
            bar.update(len(chunk))
            bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - t0, 1e-9):.1f}", cached=cached)
    finally:
        bar.close()
    write_preferences(out, records)
    counts = dict(Counter(r.preference for r in records))
    result = LabelResult(
        ds.root,
        name,
        fingerprint,
        len({r.episode_a for r in records} | {r.episode_b for r in records}),
        frames,
        cached,
        time.perf_counter() - t0,
        preferences=out,
        counts={p: counts.get(p, 0) for p in ("A", "B", "equal", "unparsed")},
    )
    summary = (
        out.name.removesuffix(".jsonl") + ".json" if out.suffix == ".jsonl" else out.stem + ".summary.json"
    )
    write_record(out.with_name(summary), cfg, result)
    return result
