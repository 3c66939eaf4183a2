"""Per-feature statistics in LeRobot's layout: ``min, max, mean, std, count, q01, q10, q50, q90, q99``.

Why exact rather than LeRobot's histogram estimate: normalization (and its q01/q99 clipping) is
fitted on these numbers, and "equals numpy" is easy to test and to trust. Numeric features are
computed with numpy in float64 (population std, linear quantiles). Images are uint8, so a
256-bin histogram per channel is a *lossless* summary: stats over all pixels scaled to [0, 1]
come out exact and histograms of many episodes simply add up. Image stats have shape
``(3, 1, 1)`` and ``count`` is the number of frames, as in LeRobot.

Depth maps keep their stored unit (metres or millimetres, no /255, as LeRobot) and have shape
``(1, 1, 1)``. Per-episode depth stats are exact; the global ones are exact for min/max/mean/std and,
for uint16 millimetres, for the quantiles too (a 65536-bin histogram); float32 depth quantiles come
from a strided pixel sample (LeRobot samples frames for image stats as well).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ember.data.errors import DatasetError
from ember.data.features import (
    NUMERIC_DTYPES,
    VISUAL_DTYPES,
    depth_keys,
    depth_unit,
    is_depth,
    numeric_keys,
    rgb_keys,
)

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = ("q01", "q10", "q50", "q90", "q99")
STAT_KEYS = ("min", "max", "mean", "std", "count", *QUANTILE_KEYS)

Stats = dict[str, dict[str, np.ndarray]]


def numeric_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats over axis 0 of ``(N, *shape)`` values; ``(N,)`` gives shape-``(1,)`` stats."""
    x = np.asarray(values)
    if x.shape[0] == 0:
        raise DatasetError("cannot compute stats of an empty array (episode with no frames?)")
    if x.ndim == 1:
        x = x[:, None]
    xf = x.astype(np.float64)
    out = {
        "min": xf.min(axis=0),
        "max": xf.max(axis=0),
        "mean": xf.mean(axis=0),
        "std": xf.std(axis=0),
        "count": np.array([x.shape[0]], dtype=np.int64),
    }
    qs = np.quantile(xf, QUANTILES, axis=0)
    for key, q in zip(QUANTILE_KEYS, qs, strict=True):
        out[key] = q
    return out


class PixelHistogram:
    """Per-channel counts of the 256 uint8 values; additive, so episode histograms merge exactly."""

    def __init__(self, channels: int = 3) -> None:
        self.counts = np.zeros((channels, 256), dtype=np.int64)
        self.frames = 0

    def update(self, frames: np.ndarray) -> None:
        """Add ``(H, W, C)`` or ``(T, H, W, C)`` uint8 frames."""
        arr = np.asarray(frames)
        if arr.dtype != np.uint8:
            raise DatasetError(f"pixel stats need uint8 frames, got {arr.dtype}")
        if arr.ndim == 3:
            arr = arr[None]
        for c in range(self.counts.shape[0]):
            self.counts[c] += np.bincount(arr[..., c].ravel(), minlength=256)
        self.frames += arr.shape[0]

    def merge(self, other: PixelHistogram) -> None:
        self.counts += other.counts
        self.frames += other.frames

    def stats(self) -> dict[str, np.ndarray]:
        """Stats of all pixels scaled to [0, 1], each of shape ``(C, 1, 1)`` (``count``: frames)."""
        if self.frames == 0:
            raise DatasetError("cannot compute image stats of zero frames")
        values = np.arange(256, dtype=np.float64) / 255.0
        counts = self.counts.astype(np.float64)
        n = counts.sum(axis=1)
        mean = (counts * values).sum(axis=1) / n
        var = (counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
        cums = np.cumsum(self.counts, axis=1)
        nz = self.counts > 0
        out = {
            "min": values[nz.argmax(axis=1)],
            "max": values[255 - nz[:, ::-1].argmax(axis=1)],
            "mean": mean,
            "std": np.sqrt(var),
            "count": np.array([self.frames], dtype=np.int64),
        }
        for key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
            out[key] = np.array([_hist_quantile(values, cums[c], q) for c in range(len(cums))])
        return {k: v if k == "count" else v.reshape(-1, 1, 1) for k, v in out.items()}


def _hist_quantile(values: np.ndarray, cumsum: np.ndarray, q: float) -> float:
    """numpy's default ('linear') quantile of the multiset described by a histogram."""
    n = int(cumsum[-1])
    pos = (n - 1) * q
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    a = values[np.searchsorted(cumsum, lo, side="right")]
    b = values[np.searchsorted(cumsum, hi, side="right")]
    return float(a + (b - a) * (pos - lo))


def depth_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Exact stats of ``(T, H, W, 1)`` depth over all pixels, in the stored unit; shapes ``(1, 1, 1)``."""
    arr = np.asarray(frames)
    out = numeric_stats(arr.reshape(-1, 1))
    out = {k: v if k == "count" else v.reshape(1, 1, 1) for k, v in out.items()}
    out["count"] = np.array([arr.shape[0]], dtype=np.int64)
    return out


class DepthAccumulator:
    """Global depth stats over many episodes without keeping the pixels (see module docstring)."""

    SAMPLE_PER_FRAME = 1024
    SAMPLE_LIMIT = 1 << 21

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.frames = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.hist = np.zeros(65536, dtype=np.int64) if unit == "mm" else None
        self._sample: list[np.ndarray] = []
        self._sample_size = 0
        self._keep_every = 1

    def update(self, frames: np.ndarray) -> None:
        arr = np.asarray(frames)
        x = arr.reshape(-1).astype(np.float64)
        if x.size == 0:
            return
        n_b, mean_b = x.size, float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta**2 * self.n * n_b / total
        self.n = total
        self.min, self.max = min(self.min, float(x.min())), max(self.max, float(x.max()))
        self.frames += arr.shape[0]
        if self.hist is not None:
            self.hist += np.bincount(arr.reshape(-1).astype(np.int64), minlength=65536)
            return
        per_frame = arr.reshape(arr.shape[0], -1)
        step = max(1, per_frame.shape[1] // self.SAMPLE_PER_FRAME) * self._keep_every
        part = per_frame[:, ::step].reshape(-1).astype(np.float64)
        self._sample.append(part)
        self._sample_size += part.size
        if self._sample_size > self.SAMPLE_LIMIT:  # deterministic thinning keeps memory bounded
            merged = np.concatenate(self._sample)[::2]
            self._sample, self._sample_size = [merged], merged.size
            self._keep_every *= 2

    def stats(self) -> dict[str, np.ndarray]:
        if self.frames == 0:
            raise DatasetError("cannot compute depth stats of zero frames")
        out: dict[str, np.ndarray] = {
            "min": np.array([self.min]),
            "max": np.array([self.max]),
            "mean": np.array([self.mean]),
            "std": np.array([np.sqrt(self.m2 / self.n)]),
        }
        if self.hist is not None:
            values = np.arange(65536, dtype=np.float64)
            cums = np.cumsum(self.hist)
            qs = [_hist_quantile(values, cums, q) for q in QUANTILES]
        else:
            qs = list(np.quantile(np.concatenate(self._sample), QUANTILES))
        for key, q in zip(QUANTILE_KEYS, qs, strict=True):
            out[key] = np.array([q])
        out = {k: v.reshape(1, 1, 1) for k, v in out.items()}
        out["count"] = np.array([self.frames], dtype=np.int64)
        return out


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of ``(T, H, W, 3)`` uint8 frames, per channel over pixels in [0, 1]; shapes ``(3, 1, 1)``."""
    hist = PixelHistogram(np.asarray(frames).shape[-1])
    hist.update(frames)
    return hist.stats()


def compute_stats(data: Mapping[str, Any], features: Mapping[str, Mapping[str, Any]]) -> Stats:
    """Stats of every numeric/visual feature in ``data`` (``key -> (T, *shape)`` arrays); text skipped."""
    out: Stats = {}
    for key, values in data.items():
        ft = features.get(key)
        if ft is None:
            raise DatasetError(f"compute_stats: {key!r} is not a declared feature")
        if ft["dtype"] in VISUAL_DTYPES:
            out[key] = depth_stats(np.asarray(values)) if is_depth(ft) else image_stats(np.asarray(values))
        elif ft["dtype"] in NUMERIC_DTYPES:
            out[key] = numeric_stats(np.asarray(values))
    return out


def aggregate_stats(stats_list: Iterable[Mapping[str, Mapping[str, np.ndarray]]]) -> Stats:
    """Merge per-episode stats without the raw data (same rule as LeRobot's ``aggregate_stats``).

    min/max/mean/std/count are exact (parallel variance). Quantiles cannot be merged exactly; like
    LeRobot we keep a conservative envelope (min of the lower quantiles, max of the upper ones).
    The writer does not need this: it keeps the raw numbers and histograms and stays exact.
    """
    stats_list = list(stats_list)
    keys = sorted({k for s in stats_list for k in s})
    out: Stats = {}
    for key in keys:
        items = [s[key] for s in stats_list if key in s]
        counts = np.array([float(np.asarray(s["count"]).reshape(-1)[0]) for s in items])
        total = counts.sum()
        means = np.stack([np.asarray(s["mean"], dtype=np.float64) for s in items])
        var = np.stack([np.asarray(s["std"], dtype=np.float64) ** 2 for s in items])
        w = counts.reshape(-1, *([1] * (means.ndim - 1)))
        mean = (means * w).sum(axis=0) / total
        variance = ((var + (means - mean) ** 2) * w).sum(axis=0) / total
        merged = {
            "min": np.min(np.stack([s["min"] for s in items]), axis=0),
            "max": np.max(np.stack([s["max"] for s in items]), axis=0),
            "mean": mean,
            "std": np.sqrt(variance),
            "count": np.array([int(total)], dtype=np.int64),
        }
        for q_key in QUANTILE_KEYS:
            if all(q_key in s for s in items):
                qs = np.stack([s[q_key] for s in items])
                merged[q_key] = qs.min(axis=0) if int(q_key[1:]) <= 50 else qs.max(axis=0)
        out[key] = merged
    return out


def numeric_stats_match(values: np.ndarray, st: Mapping[str, Any]) -> bool:
    """Do the stored ``mean`` and ``min`` of a numeric feature describe ``values`` ``(N, *shape)``?

    Two layouts are accepted for N-D features: ember's, one stat per element (``shape``), and
    LeRobot's, one per last-axis entry (its ``RunningQuantileStats`` flattens ``(N, 2, 3)`` to
    ``(2N, 3)``). LeRobot accumulates float32 data in float32 (``np.mean`` of the raw episode), so
    means are compared to 1e-5 of the column's largest magnitude, not to float64 precision; a stale
    or foreign stats.json still misses by far more than that.
    """
    if "mean" not in st or "min" not in st:
        return False
    x = np.asarray(values, dtype=np.float64)
    mean = np.ravel(np.asarray(st["mean"], dtype=np.float64))
    low = np.ravel(np.asarray(st["min"], dtype=np.float64))
    per_element = x.reshape(len(x), -1)
    if mean.size == per_element.shape[1]:
        flat = per_element
    elif x.ndim > 2 and mean.size == x.shape[-1]:
        flat = x.reshape(-1, x.shape[-1])
    else:
        return False
    if low.size != mean.size or len(flat) == 0:
        return low.size == mean.size
    data_mean = flat.mean(0)
    tol = 1e-6 * np.abs(data_mean) + 1e-5 * np.abs(flat).max(0) + 1e-9
    return bool(np.all(np.abs(mean - data_mean) <= tol) and np.allclose(low, flat.min(0)))


def stats_to_json(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Nested lists, as in LeRobot's ``meta/stats.json``."""
    return {k: {s: np.asarray(v).tolist() for s, v in ft.items()} for k, ft in stats.items()}


def stats_from_json(obj: Mapping[str, Mapping[str, Any]]) -> Stats:
    """Back to numpy (at least 1-D, like LeRobot's ``cast_stats_to_numpy``)."""
    return {k: {s: np.atleast_1d(np.asarray(v)) for s, v in ft.items()} for k, ft in obj.items()}


def flatten_stats(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """``{"stats/<feature>/<stat>": list}`` columns of ``meta/episodes/*.parquet``."""
    return {f"stats/{k}/{s}": np.asarray(v).tolist() for k, ft in stats.items() for s, v in ft.items()}


class _Column:
    """A growing ``(N, *shape)`` array (amortised doubling), so global stats stay exact and cheap."""

    def __init__(self) -> None:
        self._data: np.ndarray | None = None
        self._n = 0

    def extend(self, values: np.ndarray) -> None:
        if self._data is None:
            self._data = np.empty((max(1024, len(values)), *values.shape[1:]), dtype=values.dtype)
        if self._n + len(values) > len(self._data):
            grown = np.empty(
                (max(2 * len(self._data), self._n + len(values)), *values.shape[1:]), values.dtype
            )
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : self._n + len(values)] = values
        self._n += len(values)

    def values(self) -> np.ndarray:
        assert self._data is not None
        return self._data[: self._n]

    def __len__(self) -> int:
        return self._n

    def truncate(self, n: int) -> None:
        """Forget everything after the first ``n`` rows (rows before ``n`` are never moved or changed)."""
        self._n = min(self._n, n)


class DatasetStats:
    """Per-episode stats and the exact global stats of a dataset being written, episode by episode.

    Numeric columns are kept raw, RGB as pixel histograms, depth as :class:`DepthAccumulator`;
    ``features`` is read when an episode is added (depth units may be fixed by the first frame).
    """

    def __init__(self, features: Mapping[str, Mapping[str, Any]]) -> None:
        self._features = features
        self._numeric = {k: _Column() for k in numeric_keys(features)}
        self._pixels = {k: PixelHistogram() for k in rgb_keys(features)}
        self._depth: dict[str, DepthAccumulator] = {}

    def episode_stats(self, arrays: Mapping[str, Any], pixels: Mapping[str, PixelHistogram]) -> Stats:
        """Stats of one episode's stacked ``arrays`` and RGB ``pixels`` histograms, in feature order."""
        out = compute_stats({k: v for k, v in arrays.items() if k in self._numeric}, self._features)
        for key, hist in pixels.items():
            out[key] = hist.stats()
        for key in depth_keys(self._features):
            out[key] = depth_stats(arrays[key])
        return {k: out[k] for k in self._features if k in out}

    def add_episode(self, arrays: Mapping[str, Any], pixels: Mapping[str, PixelHistogram]) -> None:
        for key, col in self._numeric.items():
            col.extend(np.asarray(arrays[key]))
        for key, hist in pixels.items():
            self._pixels[key].merge(hist)
        for key in depth_keys(self._features):
            unit = depth_unit(self._features[key]) or "m"
            self._depth.setdefault(key, DepthAccumulator(unit)).update(arrays[key])

    def snapshot(
        self,
    ) -> tuple[dict[str, int], dict[str, tuple[np.ndarray, int]], dict[str, DepthAccumulator]]:
        """What :meth:`restore` needs to undo later :meth:`add_episode` calls: a save that failed must not
        count its episode in the global stats when it is retried. Cheap: numeric columns only remember a length."""
        depth = {}
        for key, acc in self._depth.items():
            acc = copy.copy(acc)
            acc.hist = None if acc.hist is None else acc.hist.copy()
            acc._sample = list(acc._sample)  # thinning replaces the list; its arrays are never changed
            depth[key] = acc
        return ({k: len(c) for k, c in self._numeric.items()},
                {k: (h.counts.copy(), h.frames) for k, h in self._pixels.items()}, depth)  # fmt: skip

    def restore(
        self, snap: tuple[dict[str, int], dict[str, tuple[np.ndarray, int]], dict[str, DepthAccumulator]]
    ) -> None:
        numeric, pixels, depth = snap
        for key, n in numeric.items():
            self._numeric[key].truncate(n)
        for key, (counts, frames) in pixels.items():
            self._pixels[key].counts, self._pixels[key].frames = counts, frames
        self._depth = depth

    def stats(self) -> Stats:
        """The global stats of every episode added so far, in feature order."""
        out: Stats = {}
        for key in self._features:
            if key in self._numeric:
                out[key] = numeric_stats(self._numeric[key].values())
            elif key in self._pixels:
                out[key] = self._pixels[key].stats()
            elif key in self._depth:
                out[key] = self._depth[key].stats()
        return out
