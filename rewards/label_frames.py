"""``ember label`` with a per-frame labeler (:class:`~rewards.base.Labeler`): reward / success columns.

Episodes are read (only what the labeler declares), looked up in the content cache, labeled in batches, and all
columns are written at the end in one :func:`commit_columns` (undone if it is interrupted before its commit).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ember.rewards.base import FrameLabels, Labeler, LabelError
from ember.rewards.label_config import (
    LABELS_DIR,
    LabelConfig,
    LabelResult,
    labeler_name,
    output_columns,
    progress_bar,
    write_record,
)


def label_frames(cfg: LabelConfig, labeler: Labeler, reader: Any, cache: Any) -> LabelResult:
    """Label every episode of ``reader``'s dataset (cached ones from ``cache``) and commit the columns."""
    ds = reader.ds
    name = labeler_name(cfg.labeler)
    reward_col, success_col = output_columns(cfg, name)
    feats = ds.features
    _refuse_existing(ds.root, reward_col, feats, cfg.overwrite)  # before any work (success: once it is known)
    fingerprint = labeler.fingerprint()
    from ember.rewards.cache import episode_key

    rewards: dict[int, np.ndarray] = {}
    successes: dict[int, np.ndarray] = {}
    cached = frames = 0
    t0 = time.perf_counter()
    bar = progress_bar(ds.num_episodes, f"label {name}", cfg.quiet)
    try:
        episodes = list(range(ds.num_episodes))
        for lo in range(0, len(episodes), cfg.episodes_per_batch):
            views = [reader.episode(i) for i in episodes[lo : lo + cfg.episodes_per_batch]]
            keys = [episode_key(fingerprint, v) for v in views]
            found = [cache.get_labels(k) for k in keys]
            todo = [j for j, got in enumerate(found) if got is None]
            if todo:
                fresh = labeler.label_batch([views[j] for j in todo])
                if len(fresh) != len(todo):
                    raise LabelError(
                        f"{name}: label_batch returned {len(fresh)} results for {len(todo)} episodes"
                    )
                for j, labels in zip(todo, fresh, strict=True):
                    found[j] = labels
                    cache.put_labels(keys[j], labels)
            cached += len(views) - len(todo)
            for view, labels in zip(views, found, strict=True):
                _check_length(name, view.episode_index, labels, reader.length(view.episode_index))
                rewards[view.episode_index] = labels.reward
                if labels.success is not None:
                    successes[view.episode_index] = labels.success
                frames += len(labels.reward)
            bar.update(len(views))
            bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - t0, 1e-9):.1f}", cached=cached)
    finally:
        bar.close()

    if successes and len(successes) != ds.num_episodes:
        raise LabelError(
            f"{name} gave success labels for {len(successes)} of {ds.num_episodes} episodes; a "
            "labeler gives them for every episode or for none."
        )
    if successes:  # labeled episodes are in the cache: a re-run with --overwrite or another name is quick
        _refuse_existing(ds.root, success_col, feats, cfg.overwrite)
    values: dict[str, Any] = {reward_col: rewards}
    features: dict[str, dict] = {reward_col: {"dtype": "float32", "shape": [1], "names": None}}
    if successes:
        if (
            feats.get(success_col, {}).get("dtype") == "bool"
        ):  # keep a recorded bool column bool (next.success)
            values[success_col] = {e: s >= 0.5 for e, s in successes.items()}
            features[success_col] = {"dtype": "bool", "shape": [1], "names": None}
        else:
            values[success_col] = successes
            features[success_col] = {"dtype": "float32", "shape": [1], "names": None}
    commit_columns(ds.root, values, features, overwrite=cfg.overwrite)
    result = LabelResult(
        ds.root,
        name,
        fingerprint,
        ds.num_episodes,
        frames,
        cached,
        time.perf_counter() - t0,
        columns=list(values),
    )
    write_record(ds.root / LABELS_DIR / f"{name}.json", cfg, result)
    return result


def _refuse_existing(root: Path, column: str, features: dict, overwrite: bool) -> None:
    if column in features and not overwrite:
        raise LabelError(
            f"{root} already has a column {column!r}; pass --overwrite to replace it, or choose "
            "another name (--column_prefix / --reward_column / --success_column)."
        )


def commit_columns(root: Path, values: dict[str, Any], features: dict[str, dict], overwrite: bool) -> None:
    """:func:`ember.data.add_columns`, undone if it is interrupted (an exception, Ctrl-C) before its commit.

    add_columns rewrites each data shard in place before ``meta/info.json`` declares the columns; a new column
    is then ignored by readers, but an *overwritten* one would keep its new values in the rewritten shards.
    So every file it may replace is hard-linked first (:class:`ember.data.journal.SaveJournal`, as
    ``save_episode`` does) and put back on any failure.
    """
    from ember.data import add_columns, layout
    from ember.data.journal import SaveJournal

    journal = SaveJournal(root)
    for path in [
        *sorted((root / layout.DATA_DIR).glob("chunk-*/file-*.parquet")),
        *sorted((root / layout.EPISODES_DIR).glob("chunk-*/file-*.parquet")),
        root / layout.STATS_PATH,
        root / layout.INFO_PATH,
    ]:
        journal.protect(path)
    try:
        add_columns(root, values, features=features, overwrite=overwrite)
    except BaseException:
        journal.rollback()
        raise
    journal.commit()


def _check_length(name: str, episode: int, labels: FrameLabels, want: int) -> None:
    if len(labels.reward) != want:
        raise LabelError(
            f"{name}: episode {episode} has {want} frames but the labeler returned "
            f"{len(labels.reward)} rewards."
        )
