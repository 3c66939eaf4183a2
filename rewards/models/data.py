"""Frames, instructions and label columns of one or more ember datasets, in memory, for reward-model training.

Reward models train on single frames (with their context) or on segments, not on the observation-window + action
chunk samples of :class:`ember.data.WindowDataset`, so the frames are decoded once per episode through
:class:`ember.data.EmberDataset` and kept as uint8 arrays (64x64x3 frames: ~12 KB each, 10k frames ~ 120 MB per
camera).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ember.rewards.base import LabelError


@dataclass
class FrameStore:
    images: dict[str, np.ndarray]
    """camera key -> uint8 (N, H, W, 3) over every frame of every episode."""
    instructions: list[str]
    """Per frame."""
    episode: np.ndarray
    """(N,) global episode id (datasets numbered one after another)."""
    group: np.ndarray
    """(N,) which dataset the frame came from (preference pairs are drawn within one: one task)."""
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    """name -> float32 (N,) label columns."""
    behavior: list[str] = field(default_factory=list)
    """Per episode, where the dataset records one (``sim.behavior``)."""

    @property
    def num_frames(self) -> int:
        return len(self.episode)

    @property
    def num_episodes(self) -> int:
        return int(self.episode.max()) + 1 if len(self.episode) else 0

    def episode_start(self) -> np.ndarray:
        """(N,) the global index of each frame's episode's first frame."""
        starts = np.zeros(self.num_episodes, dtype=np.int64)
        change = np.flatnonzero(np.r_[True, self.episode[1:] != self.episode[:-1]])
        starts[self.episode[change]] = change
        return starts[self.episode]

    def episode_slices(self) -> list[slice]:
        bounds = np.flatnonzero(np.r_[True, self.episode[1:] != self.episode[:-1], True])
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def split_episodes(self, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame masks (train, held-out) with ``fraction`` of the episodes held out (at least one if any)."""
        n = self.num_episodes
        k = int(round(n * fraction)) if fraction > 0 else 0
        held = np.random.default_rng(seed).permutation(n)[:k]
        mask = np.isin(self.episode, held)
        return ~mask, mask


def rgb_cameras(features: dict) -> list[str]:
    return sorted(
        k
        for k, v in features.items()
        if k.startswith("observation.images.") and v.get("dtype") in ("video", "image")
    )


def load_frames(
    roots: Sequence[str],
    cameras: Sequence[str] = (),
    columns: Sequence[str] = (),
    optional_columns: Sequence[str] = (),
    quiet: bool = True,
) -> FrameStore:
    """Decodes every episode of ``roots``; ``cameras`` empty = every RGB camera of the first dataset. A missing
    camera or column is a :class:`LabelError` naming what the dataset has."""
    from tqdm.auto import tqdm

    from ember.data import EmberDataset

    if not roots:
        raise LabelError(
            "no dataset given: pass --dataset=<folder of an ember dataset> (comma-separated for several)"
        )
    images: dict[str, list[np.ndarray]] = {}
    instructions: list[str] = []
    episode: list[np.ndarray] = []
    group: list[np.ndarray] = []
    cols: dict[str, list[np.ndarray]] = {}
    behavior: list[str] = []
    offset = 0
    cams = list(cameras)
    for g, root in enumerate(roots):
        ds = EmberDataset(root)
        have = rgb_cameras(ds.features)
        if not cams:
            cams = have
            if not cams:
                raise LabelError(
                    f"{root} has no camera (observation.images.*); reward models read camera frames: "
                    "record with --obs_mode=pixels"
                )
        missing = [c for c in cams if c not in have]
        if missing:
            raise LabelError(f"{root} lacks camera(s) {missing}; it has {have}")
        wanted = [c for c in columns if c not in ds.features]
        if wanted:
            raise LabelError(
                f"{root} has no column(s) {wanted}; its columns: "
                f"{sorted(k for k in ds.features if not k.startswith('observation.'))}"
            )
        present = list(columns) + [c for c in optional_columns if c in ds.features]
        table = ds.frame_table()
        ep_col = np.asarray(table.column("episode_index").to_numpy())
        task_idx = np.asarray(table.column("task_index").to_numpy())
        tasks = [ds.meta.tasks[int(t)] for t in task_idx]
        col_values = {
            c: np.asarray(table.column(c).to_pylist(), dtype=np.float32).reshape(len(ep_col), -1)[:, 0]
            for c in present
        }
        beh = table.column("sim.behavior").to_pylist() if "sim.behavior" in ds.features else None
        for i in tqdm(range(ds.num_episodes), desc=f"decode {root}", disable=quiet):
            rows = np.flatnonzero(ep_col == i)
            if not len(rows):
                continue
            for cam in cams:
                frames = ds.frames(cam, i)
                if len(frames) != len(rows):
                    raise LabelError(
                        f"{root} episode {i}: {len(frames)} frames of {cam} for {len(rows)} rows"
                    )
                images.setdefault(cam, []).append(frames)
            instructions += [tasks[r] for r in rows]
            episode.append(np.full(len(rows), offset, dtype=np.int64))
            group.append(np.full(len(rows), g, dtype=np.int64))
            for c in present:
                cols.setdefault(c, []).append(col_values[c][rows])
            behavior.append(str(np.ravel(beh[rows[0]])[0]) if beh is not None else "")
            offset += 1
    if not episode:
        raise LabelError(f"{list(roots)} hold no readable episodes")
    offset_frames = sum(map(len, episode))
    return FrameStore(
        images={c: np.concatenate(v) for c, v in images.items()},
        instructions=instructions,
        episode=np.concatenate(episode),
        group=np.concatenate(group),
        # an optional column only some of the datasets have cannot be aligned with the frames: left out
        columns={
            c: np.concatenate(v).astype(np.float32)
            for c, v in cols.items()
            if sum(map(len, v)) == offset_frames
        },
        behavior=behavior,
    )
