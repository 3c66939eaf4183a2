"""Export an ember dataset's state features to a d3rlpy ``MDPDataset``, so d3rlpy's IQL (a peer users would pick
instead) trains on exactly the transitions ``ember train --algorithm=iql`` does.

Per frame t (episode order, the dataset's own frames, no resampling):

    observations[t] = concat(obs_keys at t)            (state features only; d3rlpy's MLPs read vectors)
    actions[t]      = action at t
    rewards[t]      = reward_key at t                  (next.reward, next.success or a labeler's reward.<name>)
    terminals[t]    = terminal_key at t                (next.done by default: what ember's IQL stops bootstrapping at)
    timeouts[t]     = 1 at an episode's last frame that is not terminal (d3rlpy needs every episode to end)

d3rlpy is an optional dependency (the ``peers`` extra, ``pip install ember[peers]``); it is imported only when an
``MDPDataset`` is built, so :func:`export_arrays` works without it. The reward checks are ember's: a missing column
names ``ember label``, NaN rewards name their episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ember.data import DatasetError, EmberDataset, columns
from ember.data.features import NUMERIC_DTYPES


def export_arrays(
    root: str | Path,
    obs_keys: Sequence[str] = (),
    reward_key: str = "next.reward",
    terminal_key: str = "next.done",
    episodes: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """``observations, actions, rewards, terminals, timeouts, episode_index`` as numpy arrays, one row per frame.

    ``obs_keys``: empty = ``observation.state`` and, when present, ``observation.environment_state``."""
    dataset = EmberDataset(root)
    feats = dataset.features
    keys = list(obs_keys) or [k for k in ("observation.state", "observation.environment_state") if k in feats]
    bad = [k for k in keys if k not in feats or feats[k]["dtype"] not in NUMERIC_DTYPES]
    if bad or not keys:
        raise DatasetError(
            f"{dataset.root}: obs_keys {bad or keys} are not numeric state features; d3rlpy's export "
            f"takes vectors (numeric features: {[k for k in feats if feats[k]['dtype'] in NUMERIC_DTYPES]})"
        )
    for key in (reward_key, terminal_key):
        if key and key not in feats:
            raise DatasetError(
                f"{dataset.root} has no {key!r} column; record it with `ember collect` or label the "
                "dataset with `ember label --dataset=<root> --labeler=<name>`."
            )
    table = dataset.frame_table()
    ep = table.column("episode_index").to_numpy().astype(np.int64)
    chosen = [i for i in range(dataset.num_episodes) if i not in dataset.bad_episodes]
    if episodes is not None:
        chosen = sorted(set(episodes))
    rows = np.flatnonzero(np.isin(ep, np.asarray(chosen, np.int64)))
    table, ep = table.take(rows), ep[rows]

    def column(key: str) -> np.ndarray:
        arr = np.asarray(columns.to_numpy(table.column(key), feats[key]))
        return arr.reshape(len(arr), -1)

    observations = np.concatenate([column(k).astype(np.float32) for k in keys], axis=1)
    actions = column("action").astype(np.float32)
    rewards = column(reward_key).astype(np.float32)[:, 0]
    nonfinite = ~np.isfinite(rewards)
    if nonfinite.any():
        raise DatasetError(
            f"{reward_key!r} is NaN or infinite in episode(s) {sorted(set(ep[nonfinite].tolist()))[:20]} "
            f"of {dataset.root}; relabel them or leave them out (episodes=...)."
        )
    last = np.r_[ep[1:] != ep[:-1], True] if len(ep) else np.zeros(0, bool)
    terminals = column(terminal_key)[:, 0].astype(bool) if terminal_key else np.zeros(len(ep), bool)
    timeouts = last & ~terminals
    return {
        "observations": observations,
        "actions": actions,
        "rewards": rewards,
        "terminals": terminals.astype(np.float32),
        "timeouts": timeouts.astype(np.float32),
        "episode_index": ep,
    }


def to_mdp_dataset(
    root: str | Path,
    obs_keys: Sequence[str] = (),
    reward_key: str = "next.reward",
    terminal_key: str = "next.done",
    episodes: Sequence[int] | None = None,
) -> Any:
    """The dataset as a ``d3rlpy.dataset.MDPDataset`` (continuous actions); see :func:`export_arrays`."""
    arrays = export_arrays(root, obs_keys, reward_key, terminal_key, episodes)
    try:
        from d3rlpy.constants import ActionSpace
        from d3rlpy.dataset import MDPDataset
    except ImportError as exc:
        raise ImportError(
            "d3rlpy is not installed; install the peers extra: pip install 'ember[peers]' (d3rlpy 2.8.1)"
        ) from exc
    return MDPDataset(
        arrays["observations"],
        arrays["actions"],
        arrays["rewards"],
        arrays["terminals"],
        timeouts=arrays["timeouts"],
        action_space=ActionSpace.CONTINUOUS,
        action_size=arrays["actions"].shape[1],
    )
