"""Soak run: the mock arm, the bridge and the policy node at the control rate for a long time, sampled as it goes.

Why: a leak, a slowly growing queue or a timer that drifts does not show in a test of a few seconds; it shows as
latency or memory that climbs over an hour. Each node runs in its own process on real DDS (loopback, a random
domain), exactly as ``ros2 launch`` would start them; this process is only a monitor:

- every ``sample_s`` it reads each node's resident memory and CPU time from ``/proc`` and the nodes' status
  topics (counters and cumulative latency histograms, ``ember.real.histogram``);
- every ``window_s`` it reports that window: latency percentiles computed from the difference of two histogram
  snapshots (exactly the window's samples), missed cycles, holds and rejections, memory and CPU;
- it receives every command the bridge sends the controller and measures the gaps between them from the
  publisher's own timestamps (DDS ``source_timestamp``), so its own scheduling does not count.

A *missed cycle* is a control period the arm went without its command: a policy tick the timer skipped (a gap
of 1.75 periods or more between ticks counts the periods skipped), a tick with no action to send once chunks flow
(starved), a tick with a stale observation, a bridge watchdog hold or policy timeout, or a control period with no
controller command (the same rule on the gaps between commands). *Late* ticks and commands (more than 1.5
periods after the previous one, the next one on time) are counted apart: the arm got its command, a few
milliseconds late.

Used by ``bench/ros/soak.py`` (1 hour) and ``tests/test_real_soak.py`` (the CI-sized run).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ember.real.histogram import LatencyHistogram

STATUS_TOPICS = {"bridge": "/ember/bridge/status", "policy": "/ember/policy/status", "arm": "/mock_arm/stats"}
NODES = ("arm", "bridge", "policy")
GAP_PERIODS = 1.5
"""A command more than this many control periods after the previous one is *late*."""


def skipped_periods(periods: float) -> int:
    """Control periods with no command in a gap of ``periods`` periods between two commands: a late command
    (1.5 periods after the last, the next one on time) skips none; 1.75 or more periods skip one per period
    (as the policy node counts lost ticks)."""
    return max(0, int(periods + 0.25) - 1)


@dataclass
class SoakConfig:
    duration_s: float = 3600.0
    """Measured time, after ``warmup_s``."""
    window_s: float = 600.0
    """Each reported window (10 min for the hour-long run)."""
    sample_s: float = 5.0
    """How often memory, CPU and status are sampled."""
    warmup_s: float = 60.0
    """Run before measuring: start-up transients (the arm reaching its target, allocator growth) are not a leak.
    Memory growth is measured from the end of the warm-up."""
    rate_hz: float = 100.0
    """Control rate of the policy node, the bridge and the arm's joint states."""
    cameras: tuple[str, ...] = ()
    """Mock-arm cameras to render and publish (load on the machine; the reach policy reads joints only)."""
    realtime_priority: int = 0
    """SCHED_FIFO priority for every thread of the three nodes (the arm +1, the bridge +2: ``FIFO_OFFSETS``), set once they run (0: normal scheduling; needs
    root or CAP_SYS_NICE). The monitor stays at normal priority: it reads the bridge's send times, not its own."""
    n_action_steps: int = 6
    prefetch_steps: int = 3
    """Chunking of the policy node. At 100 Hz a chunk of 4 with 2 prefetched (the reach policy's 10 Hz defaults)
    asks for a new chunk every other tick and gives it 20 ms; 6 and 3 ask every third tick and give it 30 ms."""
    checkpoint: str = ""
    """Policy checkpoint; empty: the tiny reach policy of ``ember.real.testing`` (trained once, cached in ``out_dir``)."""
    out_dir: str = "outputs/soak"
    startup_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        for name in ("duration_s", "window_s", "sample_s", "rate_hz", "startup_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.warmup_s < 0:
            raise ValueError(f"warmup_s must be >= 0, got {self.warmup_s}")
        if self.sample_s > self.window_s:
            raise ValueError(f"sample_s ({self.sample_s}) must not exceed window_s ({self.window_s})")


# ------------------------------------------------------------------------------------------------ /proc
def process_memory_mb(pid: int) -> float:
    """Resident set size (VmRSS) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of a process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


FIFO_OFFSETS = {"bridge": 2, "arm": 1, "policy": 0}
"""Priority above ``realtime_priority`` per node: the bridge (the safety filter between the policy and the arm)
preempts the arm's simulation, which preempts the policy's inference. At one priority for all (measured on 2
cores), a 30 ms inference and the arm's physics step could hold both cores while a command waited ~20 ms in the
bridge's queue: a skipped control period although every policy tick was on time."""


def machine_cpu_jiffies(stat_text: str | None = None) -> dict[str, int]:
    """The machine's aggregate CPU times (the ``cpu`` line of ``/proc/stat``, in clock ticks): ``idle`` (with
    iowait), ``steal`` (time the hypervisor gave this VM's CPUs to someone else) and ``total``."""
    if stat_text is None:
        with open("/proc/stat") as f:
            stat_text = f.read()
    line = next(ln for ln in stat_text.splitlines() if ln.startswith("cpu "))
    v = [int(x) for x in line.split()[1:]]
    v += [0] * (8 - len(v))  # old kernels stop before steal
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]  # guest time is already inside user
    return {
        "idle": idle + iowait,
        "steal": steal,
        "total": user + nice + system + idle + iowait + irq + softirq + steal,
    }


def host_cpu_percent(
    a: dict[str, int], b: dict[str, int], node_cpu_s: float, hz: int = 100
) -> dict[str, float]:
    """Between two ``machine_cpu_jiffies`` readings: the share of the machine's CPU time that was stolen by the
    hypervisor, spent by the soak's own nodes, and spent by everything else (other jobs), in percent. Missed
    cycles that line up with steal or other load are the machine's, not the stack's."""
    total = b["total"] - a["total"]
    if total <= 0:
        return {"steal": 0.0, "soak_nodes": 0.0, "other": 0.0}
    busy = total - (b["idle"] - a["idle"]) - (b["steal"] - a["steal"])
    nodes = node_cpu_s * hz
    return {
        "steal": round(100.0 * (b["steal"] - a["steal"]) / total, 2),
        "soak_nodes": round(100.0 * nodes / total, 2),
        "other": round(100.0 * max(0.0, busy - nodes) / total, 2),
    }


def set_fifo(pid: int, priority: int) -> int:
    """SCHED_FIFO ``priority`` for every thread of process ``pid`` (threads started later inherit it); returns
    how many were set. Raises PermissionError without root / CAP_SYS_NICE."""
    tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    for tid in tids:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    return len(tids)


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


# ------------------------------------------------------------------------------------------------ the run
class _CommandClock:
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


def _machine_or_empty() -> dict[str, int]:
    try:
        return machine_cpu_jiffies()
    except (OSError, StopIteration, ValueError):
        return {}


def run_soak(cfg: SoakConfig, progress: Callable[[str], None] = print) -> SoakReport:
    """Start the three nodes, warm up, measure for ``duration_s``; always stops the nodes."""
    import json

    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    from ember.real import ros
    from ember.real.testing import Probe, cached_reach_policy, ros_env, start_node

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = cfg.checkpoint or str(cached_reach_policy(out / "reach_policy"))
    env = ros_env()
    if cfg.realtime_priority:
        # What a real-time deployment does besides SCHED_FIFO: lock the nodes' memory (no page-fault stalls) and
        # keep freed heap in the process (glibc returns large blocks to the kernel by default; each reuse would
        # fault the pages in again).
        env.update(
            {
                ros.LOCK_MEMORY_ENV: "1",
                "MALLOC_MMAP_THRESHOLD_": str(64 << 20),
                "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
            }
        )
    report = SoakReport(
        config={**asdict(cfg), "checkpoint": checkpoint, "ros_domain_id": int(env["ROS_DOMAIN_ID"])}
    )
    nodes = {}
    probe = None
    try:
        nodes["arm"] = start_node(
            "mock_arm",
            {
                "state_rate_hz": cfg.rate_hz,
                "cameras": list(cfg.cameras),
                "image_width": 128,
                "image_height": 96,
            },
            env,
            out,
        )
        nodes["bridge"] = start_node("bridge", {"rate_hz": cfg.rate_hz, "status_rate_hz": 1.0}, env, out)
        nodes["policy"] = start_node(
            "policy_node",
            {
                "checkpoint": checkpoint,
                "rate_hz": cfg.rate_hz,
                "num_threads": 1,
                "n_action_steps": cfg.n_action_steps,
                "prefetch_steps": cfg.prefetch_steps,
            },
            env,
            out,
            name="policy",
        )
        probe = Probe("ember_soak_monitor", domain_id=int(env["ROS_DOMAIN_ID"]))
        for topic in STATUS_TOPICS.values():
            probe.subscribe(topic, String, ros.qos_latched())
        clock = _CommandClock(1.0 / cfg.rate_hz)
        probe.node.create_subscription(
            JointTrajectory,
            ros.CONTROLLER_TOPIC,
            clock,
            QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE),
        )

        def status(node: str) -> dict[str, Any]:
            return probe.json(STATUS_TOPICS[node])

        def check_alive() -> None:
            dead = [name for name, n in nodes.items() if not n.alive()]
            if dead:
                raise RuntimeError(
                    f"node(s) {dead} exited during the soak:\n"
                    + "\n".join(nodes[d].output()[-3000:] for d in dead)
                )

        def snapshot() -> Snapshot:
            return Snapshot(
                time.monotonic(),
                {k: status(k) for k in NODES},
                {k: process_memory_mb(n.proc.pid) for k, n in nodes.items()},
                {k: process_cpu_s(n.proc.pid) for k, n in nodes.items()},
                clock.seen,
                clock.gaps,
                LatencyHistogram.from_json(clock.intervals.to_json()),
                clock.late,
                _machine_or_empty(),
            )

        deadline = time.monotonic() + cfg.startup_timeout_s
        progress(
            f"soak: starting the mock arm, bridge and policy node at {cfg.rate_hz:g} Hz "
            f"(ROS_DOMAIN_ID {env['ROS_DOMAIN_ID']}, logs in {out})"
        )
        while not (status("bridge").get("state") == "running" and status("policy").get("chunks", 0) > 0):
            check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the stack did not start within {cfg.startup_timeout_s:g} s:\n"
                    + "\n".join(f"--- {k}\n{n.output()[-2000:]}" for k, n in nodes.items())
                )
            probe.spin(0.1)
        if cfg.realtime_priority:
            prios = {name: min(99, cfg.realtime_priority + FIFO_OFFSETS.get(name, 0)) for name in nodes}
            threads = sum(set_fifo(n.proc.pid, prios[name]) for name, n in nodes.items())
            progress(f"soak: SCHED_FIFO {prios} for {threads} node threads")
        progress(
            f"soak: running; warm-up {cfg.warmup_s:g} s, then {cfg.duration_s:g} s in windows of "
            f"{cfg.window_s:g} s"
        )
        probe.spin(cfg.warmup_s)
        check_alive()
        start = time.monotonic()
        first = window_start = snapshot()

        def sample(s: Snapshot) -> None:
            report.samples.append(
                {
                    "t_s": round(s.t - start, 1),
                    "rss_mb": {k: round(v, 2) for k, v in s.rss_mb.items()},
                    "commands_seen": s.commands_seen,
                    "missed_so_far": sum(s.count(*COUNTERS[k]) for k in MISSED if k in COUNTERS)
                    - sum(first.count(*COUNTERS[k]) for k in MISSED if k in COUNTERS)
                    + s.command_gaps
                    - first.command_gaps,
                }
            )

        sample(first)
        end = start + cfg.duration_s
        while (now := time.monotonic()) < end:
            probe.spin(min(cfg.sample_s, end - now))
            check_alive()
            s = snapshot()
            sample(s)
            span = s.t - window_start.t
            if span >= cfg.window_s - 1e-6 or (
                s.t >= end and span > 0.5 * cfg.sample_s
            ):  # no sliver at the end
                w = window_report(window_start, s, len(report.windows), start)
                report.windows.append(w)
                lat = w["latency_ms"]
                progress(
                    f"soak: window {w['window']} ({w['from_s']:.0f}-{w['to_s']:.0f} s): missed {w['missed_cycles']}, "
                    f"bridge p99 {lat['bridge_callback_ms']['p99']:.2f} ms, obs->command p99 "
                    f"{lat['obs_to_command_ms']['p99']:.2f} ms, host steal "
                    f"{w['host_cpu_percent'].get('steal', float('nan')):.1f}% other "
                    f"{w['host_cpu_percent'].get('other', float('nan')):.1f}%, RSS "
                    + ", ".join(f"{k} {v:.0f}" for k, v in w["rss_mb"].items())
                    + " MiB"
                )
                window_start = s
        report.total = window_report(first, snapshot(), -1, start)
        (out / "statuses.json").write_text(json.dumps({k: status(k) for k in NODES}, indent=1))
    except Exception as exc:
        report.failure = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if probe is not None:
            probe.close()
        for node in reversed(list(nodes.values())):
            node.stop()
    return report
