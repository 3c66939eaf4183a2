"""What the soak run (``ember.real.soak``) counts and reports: missed and late control cycles, the gaps between
the controller commands the monitor receives (:class:`CommandClock`), per-window latency percentiles from the
difference of two histogram snapshots (:func:`window_report`), and the run's report (:class:`SoakReport`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ember.real.histogram import LatencyHistogram
from ember.real.soak_host import host_cpu_percent

GAP_PERIODS = 1.5
"""A command more than this many control periods after the previous one is *late*."""


def skipped_periods(periods: float) -> int:
    """Control periods with no command in a gap of ``periods`` periods between two commands: a late command
    (1.5 periods after the last, the next one on time) skips none; 1.75 or more periods skip one per period
    (as the policy node counts lost ticks)."""
    return max(0, int(periods + 0.25) - 1)


# ------------------------------------------------------------------------------------------------ samples
@dataclass
class Snapshot:
    """What the monitor knows at one instant: node statuses, /proc figures, its own command-gap counts."""

    t: float
    status: dict[str, dict[str, Any]]
    rss_mb: dict[str, float]
    cpu_s: dict[str, float]
    commands_seen: int
    command_gaps: int
    command_gap_hist: LatencyHistogram
    command_late: int = 0
    machine: dict[str, int] = field(default_factory=dict)
    """``machine_cpu_jiffies()`` at this instant (empty where /proc/stat cannot be read)."""

    def hist(self, node: str, name: str) -> LatencyHistogram:
        data = self.status.get(node, {}).get("histograms", {}).get(name)
        return LatencyHistogram.from_json(data) if data else LatencyHistogram()

    def count(self, node: str, *path: str) -> int:
        value: Any = self.status.get(node, {})
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        return int(value) if isinstance(value, int | float) else 0


COUNTERS = {
    "policy_missed_ticks": ("policy", "missed_ticks"),
    "policy_starved_ticks": ("policy", "starved_ticks"),
    "policy_stale_ticks": ("policy", "stale_ticks"),
    "policy_late_ticks": ("policy", "late_ticks"),
    "policy_errors": ("policy", "errors"),
    "policy_ticks": ("policy", "ticks"),
    "policy_chunks": ("policy", "chunks"),
    "bridge_actions": ("bridge", "actions"),
    "bridge_commands": ("bridge", "commands"),
    "bridge_rejected": ("bridge", "safety", "rejected"),
    "bridge_velocity_clamps": ("bridge", "safety", "velocity"),
    "bridge_watchdog_holds": ("bridge", "watchdog_holds"),
    "bridge_policy_timeouts": ("bridge", "policy_timeouts"),
    "bridge_dropped_states": ("bridge", "dropped_states"),
    "arm_physics_overruns": ("arm", "physics_overruns"),
    "arm_state_msgs": ("arm", "state_msgs"),
    "arm_refused": ("arm", "refused"),
    "arm_unsafe_refused": ("arm", "unsafe"),
}
MISSED = (
    "policy_missed_ticks",
    "policy_starved_ticks",
    "policy_stale_ticks",
    "bridge_watchdog_holds",
    "bridge_policy_timeouts",
    "command_gaps",
    "arm_refused",
    "arm_unsafe_refused",
)
"""A command the arm refused (malformed, or unsafe by its own audit) is a period the arm went without one."""
LATENCIES = {
    "bridge_callback_ms": ("bridge", "latency_ms"),
    "obs_to_command_ms": ("bridge", "obs_to_command_ms"),
    "policy_inference_ms": ("policy", "inference_ms"),
    "policy_tick_interval_ms": ("policy", "tick_interval_ms"),
    "policy_tick_ms": ("policy", "tick_ms"),
}


def window_report(a: Snapshot, b: Snapshot, index: int, start: float) -> dict[str, Any]:
    """The window between snapshots ``a`` and ``b`` (b later)."""
    seconds = b.t - a.t
    counts = {name: b.count(*path) - a.count(*path) for name, path in COUNTERS.items()}
    counts["command_gaps"] = b.command_gaps - a.command_gaps
    counts["late_commands"] = b.command_late - a.command_late
    counts["commands_seen"] = b.commands_seen - a.commands_seen
    latencies = {name: b.hist(*path).since(a.hist(*path)).summary() for name, path in LATENCIES.items()}
    intervals = {
        "command_interval_ms": b.command_gap_hist.since(a.command_gap_hist),
        "policy_tick_interval_ms": b.hist("policy", "tick_interval_ms").since(
            a.hist("policy", "tick_interval_ms")
        ),
    }
    latencies["command_interval_ms"] = intervals["command_interval_ms"].summary()
    return {
        "window": index,
        "from_s": round(a.t - start, 1),
        "to_s": round(b.t - start, 1),
        "seconds": round(seconds, 1),
        "missed_cycles": sum(counts[k] for k in MISSED),
        **counts,
        "latency_ms": latencies,
        "interval_histograms": {k: h.to_json() for k, h in intervals.items()},
        "rss_mb": {k: round(v, 1) for k, v in b.rss_mb.items()},
        "cpu_percent": {k: round(100.0 * (b.cpu_s[k] - a.cpu_s[k]) / seconds, 1) for k in b.cpu_s},
        "host_cpu_percent": host_cpu_percent(
            a.machine, b.machine, sum(b.cpu_s[k] - a.cpu_s[k] for k in b.cpu_s), os.sysconf("SC_CLK_TCK")
        )
        if a.machine and b.machine
        else {},
    }


@dataclass
class SoakReport:
    config: dict[str, Any]
    windows: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    """Every sample: seconds since the warm-up ended, RSS per node, commands seen."""
    total: dict[str, Any] = field(default_factory=dict)
    failure: str = ""
    """Why the run stopped early (a node died, a status went silent); empty when it ran its course."""

    def rss_growth_percent(self) -> dict[str, float]:
        """Per node: RSS at the last sample vs the first (the end of the warm-up), in percent."""
        if len(self.samples) < 2:
            return {}
        first, last = self.samples[0]["rss_mb"], self.samples[-1]["rss_mb"]
        return {k: round(100.0 * (last[k] - first[k]) / first[k], 2) for k in first}

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "total": self.total,
            "rss_growth_percent": self.rss_growth_percent(),
            "failure": self.failure,
            "windows": self.windows,
            "samples": self.samples,
        }


class CommandClock:
    """Gaps between consecutive controller commands, by the bridge's send time (DDS source timestamp)."""

    def __init__(self, period_s: float) -> None:
        self.period_ms = period_s * 1e3
        self.last_ns: int | None = None
        self.seen = 0
        self.gaps = 0
        self.late = 0
        self.intervals = LatencyHistogram()

    def __call__(self, msg: Any, info: Any) -> None:
        self.seen += 1
        sent = int(info["source_timestamp"])
        if self.last_ns is not None:
            ms = (sent - self.last_ns) / 1e6
            self.intervals.add(ms)
            periods = ms / self.period_ms
            if periods > GAP_PERIODS:
                self.late += 1
            self.gaps += skipped_periods(periods)
        self.last_ns = sent
