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

The pieces: this module starts the nodes and runs the monitor; ``ember.real.soak_host`` reads ``/proc`` and sets
the real-time priorities; ``ember.real.soak_metrics`` counts missed cycles and reports the windows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ember.real.histogram import LatencyHistogram
from ember.real.soak_host import (
    FIFO_OFFSETS,
    machine_cpu_jiffies_or_empty,
    process_cpu_s,
    process_memory_mb,
    set_fifo,
)
from ember.real.soak_metrics import COUNTERS, MISSED, CommandClock, Snapshot, SoakReport, window_report

STATUS_TOPICS = {"bridge": "/ember/bridge/status", "policy": "/ember/policy/status", "arm": "/mock_arm/stats"}
NODES = ("arm", "bridge", "policy")


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
    """Policy checkpoint; empty: the tiny reach policy of ``ember.real.testing.reach`` (trained once, cached in ``out_dir``)."""
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


def run_soak(cfg: SoakConfig, progress: Callable[[str], None] = print) -> SoakReport:
    """Start the three nodes, warm up, measure for ``duration_s``; always stops the nodes."""
    import json

    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    from ember.real import ros
    from ember.real.testing.processes import Probe, ros_env, start_node
    from ember.real.testing.reach import cached_reach_policy

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
            "policy",
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
        clock = CommandClock(1.0 / cfg.rate_hz)
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
                machine_cpu_jiffies_or_empty(),
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
