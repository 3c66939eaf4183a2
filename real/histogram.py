"""Cumulative latency histograms that a node can publish in its status and a monitor can difference.

Why: a node's status used to hold percentiles over its last few thousand samples, which cannot say what happened
between 10:00 and 10:10 of a one-hour run. A histogram of every sample since start, in fixed log-spaced buckets,
can: the monitor keeps two snapshots and subtracts them (:meth:`LatencyHistogram.since`), and the percentiles of
the difference are those of exactly that window (to one bucket, about 4% of the value). Fixed buckets keep the
status message small (a few dozen non-empty buckets) and a sample costs one ``log10`` and one dict update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

BUCKETS_PER_DECADE = 60
"""Bucket width: 10^(1/60) = 1.039, so a percentile read off a bucket's middle is within 2% of the true value."""
LOWEST_MS = 1e-3
"""Everything at or below 1 microsecond lands in bucket 0."""


def bucket_of(ms: float) -> int:
    if not ms > LOWEST_MS:  # also NaN: a sample that cannot be placed is counted, never dropped
        return 0
    return int(math.floor(math.log10(ms / LOWEST_MS) * BUCKETS_PER_DECADE)) + 1


def bucket_upper_ms(index: int) -> float:
    return LOWEST_MS * 10 ** (index / BUCKETS_PER_DECADE)


def bucket_middle_ms(index: int) -> float:
    """The bucket's geometric middle: a percentile read from it is within 2% of the true value."""
    return LOWEST_MS * 10 ** ((index - 0.5) / BUCKETS_PER_DECADE) if index > 0 else LOWEST_MS


@dataclass
class LatencyHistogram:
    """Counts of samples per log-spaced bucket, plus the exact count, sum and maximum."""

    counts: dict[int, int] = field(default_factory=dict)
    n: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, ms: float) -> None:
        b = bucket_of(ms)
        self.counts[b] = self.counts.get(b, 0) + 1
        self.n += 1
        if math.isfinite(ms):
            self.total_ms += ms
            self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100), read at its bucket's middle (capped by the maximum); NaN when empty."""
        if self.n == 0:
            return math.nan
        rank = max(1, math.ceil(q / 100.0 * self.n))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return min(bucket_middle_ms(b), self.max_ms) if self.max_ms > 0 else bucket_middle_ms(b)
        return self.max_ms

    def since(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """The samples added after ``earlier`` (a snapshot of this same histogram); the maximum is not windowed,
        so a window's ``max_ms`` is the largest of its top bucket's edge and what the counts allow."""
        keys = set(self.counts) | set(earlier.counts)
        counts = {b: self.counts.get(b, 0) - earlier.counts.get(b, 0) for b in keys}
        counts = {b: c for b, c in counts.items() if c}
        if any(c < 0 for c in counts.values()) or earlier.n > self.n:
            raise ValueError("'earlier' is not an earlier snapshot of this histogram (a count went down)")
        top = max(counts) if counts else 0
        return LatencyHistogram(
            counts,
            self.n - earlier.n,
            self.total_ms - earlier.total_ms,
            min(self.max_ms, bucket_upper_ms(top)) if counts else 0.0,
        )

    def mean(self) -> float:
        return self.total_ms / self.n if self.n else math.nan

    def summary(self) -> dict[str, float]:
        return {
            "n": self.n,
            "p50": round(self.percentile(50), 4),
            "p90": round(self.percentile(90), 4),
            "p99": round(self.percentile(99), 4),
            "max": round(self.max_ms, 4),
            "mean": round(self.mean(), 4),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "buckets_per_decade": BUCKETS_PER_DECADE,
            "lowest_ms": LOWEST_MS,
            "counts": {str(b): c for b, c in sorted(self.counts.items())},
            "n": self.n,
            "total_ms": self.total_ms,
            "max_ms": self.max_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyHistogram:
        if data.get("buckets_per_decade", BUCKETS_PER_DECADE) != BUCKETS_PER_DECADE:
            raise ValueError(
                f"histogram with {data['buckets_per_decade']} buckets per decade; this reader "
                f"knows {BUCKETS_PER_DECADE}"
            )
        return cls(
            {int(b): int(c) for b, c in data.get("counts", {}).items()},
            int(data.get("n", 0)),
            float(data.get("total_ms", 0.0)),
            float(data.get("max_ms", 0.0)),
        )
