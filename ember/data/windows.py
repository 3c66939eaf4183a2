"""Training windows (diffusion-policy convention) over an :class:`EmberDataset`.

Item ``t`` (any frame of any episode) holds, for each observation key, the ``n_obs_steps``
frames ending at ``t`` and the ``horizon`` actions starting at the *first* observation frame
``t - n_obs_steps + 1``. Windows never cross episodes: outside the episode the edge frame is
repeated, and ``<key>_is_pad`` (every observation key) and ``action_is_pad`` mark those steps, as
LeRobot's ``delta_timestamps`` loader does.

For offline RL, ``next_keys=("next.reward", "next.done", "next.success")`` adds the current frame's outcome
columns (shape (1,)), and ``next_observation=True`` adds ``next.observation.*``: the observation window one frame
later, its ``next.observation.<key>_is_pad`` True past the episode's end (where the last frame is repeated).
``next_steps=n`` (n-step TD over an executed action chunk) makes each ``next_keys`` column the n frames ``t..t+n-1``
(shape (n, *shape), the last frame repeated past the episode's end, ``next.is_pad`` (n,) marking those) and the
next observation window the one ending n frames later; ``next_steps=1`` (the default) is the one-frame layout.

Speed: numeric columns live in memory as numpy. Camera frames are decoded once per episode
into a file under ``<root>/.cache/ember-frames`` (or ``cache_dir``) and memory-mapped, so
later epochs, other processes and DataLoader workers never decode video again
(:mod:`ember.data.frame_cache`). ``cache=False`` decodes the window's frames on every access
instead (what LeRobot does; kept for the benchmark and for one-pass jobs).
``image_dtype="uint8"`` returns RGB frames as uint8 ``(n, 3, H, W)``, so workers and collate move
4x fewer bytes; convert with :func:`ember.transforms.to_unit_float` on the GPU.

Optional normalization (``normalization={"observation.state": "mean_std", "action": "min_max"}``)
uses ``meta/stats.json``, with LeRobot's modes ``mean_std``, ``min_max`` and ``quantiles``
(q01/q99 to [-1, 1]; :mod:`ember.data.normalization`); a missing stat is an error, never a silent identity.

``motion=True`` (RT-H language motions, labeled by ``ember motions`` / ``ember.vla.motion_labels.label_motions``):
each item also holds ``motion`` (the frame's motion phrase, from the ``motion`` rows of ``language_persistent``) and
``motion.index`` (int64 scalar: its index in the vocabulary of ``meta/motions.json``, :mod:`ember.data.motions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ember.data import columns, layout
from ember.data.dataset import EmberDataset
from ember.data.errors import DatasetError
from ember.data.features import NUMERIC_DTYPES, VISUAL_DTYPES, is_depth
from ember.data.frame_cache import FrameCache
from ember.data.motions import frame_motion_indices
from ember.data.normalization import normalization_params
from ember.transforms import to_float_chw


class WindowDataset(Dataset):
    """``(n_obs_steps, ...)`` observation windows and ``(horizon, A)`` action chunks, one per frame."""

    def __init__(
        self,
        dataset: EmberDataset,
        n_obs_steps: int,
        horizon: int,
        obs_keys: Sequence[str],
        action_key: str = "action",
        image_keys: Sequence[str] | None = None,
        cache_dir: str | Path | None = None,
        episodes: Sequence[int] | None = None,
        image_dtype: str = "float32",
        cache: bool = True,
        normalization: Mapping[str, str] | None = None,
        next_keys: Sequence[str] = (),
        next_observation: bool = False,
        next_steps: int = 1,
        motion: bool = False,
    ) -> None:
        if image_dtype not in ("float32", "uint8"):
            raise DatasetError(f"image_dtype must be 'float32' or 'uint8', got {image_dtype!r}.")
        if n_obs_steps < 1 or horizon < 1:
            raise DatasetError(f"n_obs_steps and horizon must be >= 1, got {n_obs_steps} and {horizon}.")
        feats = dataset.features
        for key in [*obs_keys, action_key]:
            if key not in feats:
                raise DatasetError(f"{key!r} is not a feature of {dataset.root}; features: {list(feats)}.")
        missing_next = [k for k in next_keys if k not in feats]
        if missing_next:
            raise DatasetError(
                f"{dataset.root} has no {missing_next} column(s), which this training needs; record them with "
                "`ember collect` (it writes next.reward/next.done/next.success) or label the dataset with "
                "`ember label --dataset=<root> --labeler=<name>` (it writes next.reward, next.success or "
                "reward.<labeler>; ember.data.add_columns from code)."
            )
        if not isinstance(next_steps, int) or next_steps < 1:
            raise DatasetError(f"next_steps must be a positive int, got {next_steps!r}.")
        self.next_steps = int(next_steps)
        self.next_keys = list(next_keys)
        self.next_observation = bool(next_observation)
        if feats[action_key]["dtype"] not in NUMERIC_DTYPES:
            raise DatasetError(f"action key {action_key!r} must be numeric, is {feats[action_key]['dtype']}.")
        visual = [k for k in obs_keys if feats[k]["dtype"] in VISUAL_DTYPES]
        self.image_keys = list(visual if image_keys is None else image_keys)
        if set(self.image_keys) != set(visual):
            raise DatasetError(
                f"image_keys {self.image_keys} must be exactly the camera features among obs_keys ({visual})."
            )
        self.text_keys = [k for k in obs_keys if feats[k]["dtype"] == "string"]
        bad_obs = [
            k
            for k in obs_keys
            if k not in visual and k not in self.text_keys and feats[k]["dtype"] not in NUMERIC_DTYPES
        ]
        if bad_obs:
            raise DatasetError(
                f"obs keys {bad_obs} are neither numeric, cameras nor string columns; they cannot be batched."
            )
        self.depth_keys = [k for k in self.image_keys if is_depth(feats[k])]
        self.image_dtype = image_dtype
        self.use_cache = bool(cache)
        self.normalization = dict(normalization or {})
        self._norm = normalization_params(dataset, self.normalization, [*obs_keys, action_key])
        if image_dtype == "uint8" and any(
            k in self._norm for k in self.image_keys if k not in self.depth_keys
        ):
            raise DatasetError(
                "image_dtype='uint8' returns raw pixels; normalize RGB cameras on the GPU instead."
            )

        self.dataset = dataset
        self.n_obs_steps, self.horizon = int(n_obs_steps), int(horizon)
        self.obs_keys, self.action_key = list(obs_keys), action_key
        self.cache_dir = Path(cache_dir) if cache_dir is not None else dataset.root / layout.CACHE_DIR
        chosen = [i for i in range(dataset.num_episodes) if i not in dataset.bad_episodes]
        if episodes is not None:
            chosen = sorted(set(episodes))
            for i in chosen:
                dataset.episode_bounds(i)  # IndexError if out of range
                if i in dataset.bad_episodes:
                    raise DatasetError(f"episode {i} is unreadable: {dataset.bad_episodes[i]}")
        self.episodes = chosen
        self._load_numeric()
        self._motion = (
            frame_motion_indices(dataset, self.episodes, self._ep_of_row, self._start) if motion else None
        )
        self._frame_cache = FrameCache(dataset, self.cache_dir, self.use_cache, self._lengths)

    # ------------------------------------------------------------------ setup
    def _load_numeric(self) -> None:
        table = self.dataset.frame_table()
        ep_col = table.column("episode_index").to_numpy()
        mask = np.isin(ep_col, np.asarray(self.episodes, dtype=np.int64))
        rows = np.nonzero(mask)[0]
        table = table.take(rows)
        ep = ep_col[rows]
        feats = self.dataset.features
        self._numeric: dict[str, np.ndarray] = {}
        self._text: dict[str, list[str]] = {}
        for key in self.text_keys:
            self._text[key] = table.column(key).to_pylist()
        numeric = [k for k in self.obs_keys if k not in self.image_keys and k not in self.text_keys]
        for key in [*numeric, self.action_key, *self.next_keys]:
            arr = np.asarray(columns.to_numpy(table.column(key), feats[key]), dtype=np.float32)
            arr = arr.reshape(len(arr), *feats[key]["shape"])
            if key in self._norm:
                arr = self._apply_norm(key, arr)
            self._numeric[key] = np.ascontiguousarray(arr, dtype=np.float32)
        for key in self.next_keys:
            bad = np.flatnonzero(~np.isfinite(self._numeric[key]).reshape(len(ep), -1).all(axis=1))
            if len(bad):
                episodes = sorted({int(e) for e in ep[bad]})
                raise DatasetError(
                    f"{key!r} is NaN or infinite in episode(s) {episodes[:20]} of "
                    f"{self.dataset.root}; relabel them or leave them out (episodes=...)."
                )
        n = len(ep)
        starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if n else np.zeros(0, np.int64)
        ends = np.r_[starts[1:], n]
        lengths = ends - starts
        self._ep_of_row = ep.astype(np.int64)
        self._start = np.repeat(starts, lengths).astype(np.int64)
        self._end = np.repeat(ends, lengths).astype(np.int64)
        self._task_index = table.column("task_index").to_numpy().astype(np.int64)
        self._lengths = {int(e): int(length) for e, length in zip(ep[starts], lengths, strict=True)}
        self._obs_offsets = np.arange(-self.n_obs_steps + 1, 1)
        self._act_offsets = np.arange(self.horizon) - self.n_obs_steps + 1

    # ------------------------------------------------------------------ Dataset API
    def __len__(self) -> int:
        return len(self._ep_of_row)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range ({len(self)} windows)")
        i = int(i) % len(self)
        start, end = self._start[i], self._end[i]
        obs_raw = i + self._obs_offsets
        obs_rows = np.clip(obs_raw, start, end - 1)
        obs_pad = torch.from_numpy(obs_raw < start)
        act_raw = i + self._act_offsets
        act_rows = np.clip(act_raw, start, end - 1)
        item: dict[str, Any] = self._observation_window(i, obs_rows, obs_pad, start)
        n = self.next_steps
        if self.next_observation:
            next_raw = obs_raw + n
            next_rows = np.clip(next_raw, start, end - 1)
            pad = torch.from_numpy((next_raw < start) | (next_raw >= end))
            window = self._observation_window(i, next_rows, pad, start, text=False)
            item.update({f"next.{k}": v for k, v in window.items()})
        if n == 1:
            for key in self.next_keys:
                item[key] = torch.from_numpy(self._numeric[key][i].copy())
        elif self.next_keys:
            step_raw = i + np.arange(n)
            step_rows = np.clip(step_raw, start, end - 1)
            for key in self.next_keys:
                item[key] = torch.from_numpy(self._numeric[key][step_rows])
            item["next.is_pad"] = torch.from_numpy(step_raw >= end)
        item["action"] = torch.from_numpy(self._numeric[self.action_key][act_rows])
        item["action_is_pad"] = torch.from_numpy((act_raw < start) | (act_raw >= end))
        if self.dataset.meta.tasks:
            item["task"] = self.dataset.meta.tasks[int(self._task_index[i])]
        if self._motion is not None:
            item["motion"] = self._motion[0][int(self._motion[1][i])]
            item["motion.index"] = torch.tensor(int(self._motion[1][i]), dtype=torch.int64)
        return item

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch | list[dict[str, Any]]:
        """The windows at ``indices`` (what torch's DataLoader asks for, one batch at a time).

        State-only windows (numeric observations, no cameras, text or motions) are gathered for the whole batch at
        once with numpy fancy indexing, as a :class:`WindowBatch`: a sequence of the same items
        ``[self[i] for i in indices]`` holds, already stacked (``collate_windows`` returns the stack itself,
        ``default_collate`` re-stacks the items; both equal ``default_collate([self[i] for i in indices])``).
        Windows with cameras, text or motions are built item by item (``__getitem__``)."""
        if self.image_keys or self.text_keys or self._motion is not None:
            return [self[int(i)] for i in indices]
        return WindowBatch(self._numeric_batch(indices), len(indices))

    def _numeric_batch(self, indices: Sequence[int]) -> dict[str, Any]:
        """``__getitem__`` for a whole batch of state-only windows: every array gains a leading batch dim."""
        size = len(self)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = idx[(idx < -size) | (idx >= size)]
        if len(bad):
            raise IndexError(f"window {int(bad[0])} out of range ({size} windows)")
        idx = idx % size if size else idx
        start, end = self._start[idx][:, None], self._end[idx][:, None]
        batch: dict[str, Any] = {}

        def window(rows: np.ndarray, pad: np.ndarray, prefix: str) -> None:
            for key in self.obs_keys:
                batch[prefix + key] = torch.from_numpy(self._numeric[key][rows])
                batch[f"{prefix}{key}_is_pad"] = torch.from_numpy(pad.copy())

        obs_raw = idx[:, None] + self._obs_offsets
        window(np.clip(obs_raw, start, end - 1), obs_raw < start, "")
        n = self.next_steps
        if self.next_observation:
            next_raw = obs_raw + n
            window(np.clip(next_raw, start, end - 1), (next_raw < start) | (next_raw >= end), "next.")
        if n == 1:
            for key in self.next_keys:
                batch[key] = torch.from_numpy(self._numeric[key][idx])
        elif self.next_keys:
            step_raw = idx[:, None] + np.arange(n)
            step_rows = np.clip(step_raw, start, end - 1)
            for key in self.next_keys:
                batch[key] = torch.from_numpy(self._numeric[key][step_rows])
            batch["next.is_pad"] = torch.from_numpy(step_raw >= end)
        act_raw = idx[:, None] + self._act_offsets
        batch["action"] = torch.from_numpy(self._numeric[self.action_key][np.clip(act_raw, start, end - 1)])
        batch["action_is_pad"] = torch.from_numpy((act_raw < start) | (act_raw >= end))
        if self.dataset.meta.tasks:
            tasks = self.dataset.meta.tasks
            batch["task"] = [tasks[int(t)] for t in self._task_index[idx]]
        return batch

    def _observation_window(
        self, i: int, rows: np.ndarray, pad: torch.Tensor, start: int, text: bool = True
    ) -> dict[str, Any]:
        """Every observation key at dataset ``rows`` (clipped to the episode), with its ``_is_pad`` flags."""
        item: dict[str, Any] = {}
        for key in self.obs_keys:
            if key in self.text_keys:
                if text:
                    item[key] = self._text[key][i]  # the current frame's text (not a window)
                continue
            if key in self.image_keys:
                ep = int(self._ep_of_row[i])
                frames = self._frame_cache.window(key, ep, rows - start)
                item[key] = self._camera_tensor(key, frames)
            else:
                item[key] = torch.from_numpy(self._numeric[key][rows])
            item[f"{key}_is_pad"] = pad
        return item

    def _camera_tensor(self, key: str, frames: np.ndarray) -> torch.Tensor:
        """``(n, H, W, C)`` frames -> ``(n, C, H, W)``: float [0, 1] / uint8 RGB, float32 depth (stored unit)."""
        if key in self.depth_keys:
            out = np.ascontiguousarray(np.moveaxis(frames, -1, -3), dtype=np.float32)
            if key in self._norm:
                out = self._apply_norm(key, out)
            return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
        if self.image_dtype == "uint8":
            return torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, -3)))
        out = to_float_chw(frames)
        if key in self._norm:
            out = self._apply_norm(key, out)
        return torch.from_numpy(out)

    # ------------------------------------------------------------------ normalization
    def _apply_norm(self, key: str, arr: np.ndarray) -> np.ndarray:
        shift, scale = self._norm[key]
        return (arr - shift) / scale

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Inverse of the normalization applied to ``key`` (e.g. predicted actions back to robot units)."""
        if key not in self._norm:
            return x
        shift, scale = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in self._norm[key])
        return x * scale + shift

    # ------------------------------------------------------------------ frame cache
    def warm_cache(self) -> None:
        """Decode every missing (camera, episode) now, e.g. before starting DataLoader workers."""
        self._frame_cache.warm(self.image_keys, self.episodes)

    def cache_path(self, key: str, ep: int) -> Path:
        """Cache file of camera ``key``, episode ``ep``; its name changes if the source shard changes."""
        return self._frame_cache.path(key, ep)


class WindowBatch(Sequence):
    """A batch of windows already stacked (``collated``), that still reads as the sequence of its items.

    ``collate_windows`` (the collate function ``ember train`` gives its DataLoader) returns ``collated`` as is;
    any other collate function sees ``len(batch)`` items, item ``k`` being ``{key: value[k]}`` (views of the
    stack), so ``default_collate`` rebuilds the same batch."""

    def __init__(self, collated: dict[str, Any], size: int) -> None:
        self.collated, self.size = collated, int(size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, k: int) -> dict[str, Any]:  # type: ignore[override]
        if not -self.size <= k < self.size:
            raise IndexError(f"item {k} out of range ({self.size} items)")
        return {key: value[k] for key, value in self.collated.items()}


def collate_windows(data: Any) -> Any:
    """``default_collate``, except that a :class:`WindowBatch` (``WindowDataset.__getitems__``) is already a batch."""
    if isinstance(data, WindowBatch):
        return data.collated
    return default_collate(data)
