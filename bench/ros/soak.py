"""Soak: mock arm + bridge + policy node at 100 Hz for an hour; latency, missed cycles and memory per 10 minutes.

Method in ``real/soak.py`` (each node in its own process on real DDS, a monitor reading /proc and the nodes'
cumulative latency histograms). Targets (issue 18): 0 missed cycles, RSS of every node flat within 5% from the
end of the warm-up to the end of the hour.

    .venv/bin/python bench/ros/soak.py                        # 1 h at 100 Hz, 10-min windows
    .venv/bin/python bench/ros/soak.py --minutes 2 --window-s 30   # a quick look

Prints one row per window and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TARGET = "0 missed cycles; RSS of each node within 5% of its value after the warm-up"


def table(report: dict) -> str:
    head = (
        f"{'window':>7}{'min':>10}{'missed':>8}{'bridge p50/p99 ms':>19}{'obs->cmd p50/p99':>18}"
        f"{'tick p99/max':>14}{'infer p50/p99':>15}{'RSS arm/bridge/policy MiB':>27}{'CPU% a/b/p':>16}"
        f"{'host steal/other %':>20}"
    )
    rows = [head]
    for w in [*report["windows"], {**report["total"], "window": "all"}]:
        lat = w["latency_ms"]
        b, o, t, i = (
            lat[k]
            for k in (
                "bridge_callback_ms",
                "obs_to_command_ms",
                "policy_tick_interval_ms",
                "policy_inference_ms",
            )
        )
        rss, cpu, host = w["rss_mb"], w["cpu_percent"], w.get("host_cpu_percent", {})
        rows.append(
            f"{w['window']!s:>7}{w['from_s'] / 60:>5.0f}-{w['to_s'] / 60:<4.0f}{w['missed_cycles']:>8}"
            f"{b['p50']:>9.2f}/{b['p99']:<9.2f}{o['p50']:>8.2f}/{o['p99']:<9.2f}{t['p99']:>7.1f}/{t['max']:<6.1f}"
            f"{i['p50']:>7.2f}/{i['p99']:<7.2f}{rss['arm']:>9.0f}/{rss['bridge']:.0f}/{rss['policy']:<8.0f}"
            f"{cpu['arm']:>6.0f}/{cpu['bridge']:.0f}/{cpu['policy']:.0f}"
            f"{host.get('steal', float('nan')):>12.1f}/{host.get('other', float('nan')):.1f}"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--window-s", type=float, default=600.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--warmup-s", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--cameras", nargs="*", default=[], help="mock-arm cameras to render (load)")
    parser.add_argument(
        "--realtime", type=int, default=0, help="SCHED_FIFO priority for the nodes' threads (0: off)"
    )
    parser.add_argument("--n-action-steps", type=int, default=6, help="actions executed per chunk")
    parser.add_argument(
        "--prefetch-steps", type=int, default=3, help="ask for the next chunk this many steps ahead"
    )
    parser.add_argument("--checkpoint", default="", help="policy checkpoint (default: the tiny reach policy)")
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "ros_soak.json"))
    args = parser.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from ember.real.soak import SoakConfig, run_soak

    cfg = SoakConfig(
        duration_s=args.minutes * 60,
        window_s=args.window_s,
        sample_s=args.sample_s,
        warmup_s=args.warmup_s,
        rate_hz=args.rate,
        cameras=tuple(args.cameras),
        realtime_priority=args.realtime,
        n_action_steps=args.n_action_steps,
        prefetch_steps=args.prefetch_steps,
        checkpoint=args.checkpoint,
        out_dir=str(Path(args.out).parent / "ros_soak_run"),
    )
    load_before = os.getloadavg()
    report = run_soak(cfg).to_json()
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "rmw": os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    growth = report["rss_growth_percent"]
    missed = report["total"]["missed_cycles"]
    report["target"] = TARGET
    report["met"] = missed == 0 and all(abs(g) <= 5.0 for g in growth.values())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    total = report["total"]
    print(
        f"\nsoak: {args.minutes:g} min at {args.rate:g} Hz after {args.warmup_s:g} s warm-up, cameras "
        f"{args.cameras or 'none'}, SCHED_FIFO {args.realtime or 'off'}, load average {load_before[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    print(table(report))
    print(
        f"missed cycles {missed} (policy missed/starved/stale ticks {total['policy_missed_ticks']}/"
        f"{total['policy_starved_ticks']}/{total['policy_stale_ticks']}, bridge holds "
        f"{total['bridge_watchdog_holds'] + total['bridge_policy_timeouts']}, command gaps {total['command_gaps']}, "
        f"refused by the arm {total.get('arm_refused', 0) + total.get('arm_unsafe_refused', 0)}); "
        f"late (on time again next cycle): ticks {total.get('policy_late_ticks', 0)}, commands "
        f"{total.get('late_commands', 0)}; "
        f"commands {total['commands_seen']}, bridge rejected {total['bridge_rejected']}, "
        f"arm physics overruns {total['arm_physics_overruns']}"
    )
    print("RSS growth since warm-up: " + ", ".join(f"{k} {v:+.2f}%" for k, v in growth.items()))
    print(f"target ({TARGET}): {'met' if report['met'] else 'NOT met'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
