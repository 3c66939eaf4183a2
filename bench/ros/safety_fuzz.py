"""Fuzz the safety filter with 10^6 commands and count invariant violations (there should be none).

Random robots (1-7 arm joints, 0-2 fingers, ranges from 0.01 rad) and the real Panda (a quarter of the
scenarios, with its MuJoCo forward kinematics), random ``SafetyConfig``s, a simulated arm that lags, gets blocked
and pushed, sensor faults (NaN/inf, wrong size, outside the limits), timing faults (jitter, bursts, clock going
back, gaps; stale, future, NaN and inf ages), and commands of every kind (tracking, goal-seeking, duplicates,
jumps, at and beyond the limits, exactly on the thresholds, NaN/inf/huge, wrong shapes, shuffled/missing/unknown
names, lists/tuples/float32/strings/None), plus e-stops, resets and holds. Every decision is checked against the
reference model in ``real/testing/fuzz_oracle.py`` (its docstring lists the invariants); ``tests/test_real_safety_fuzz.py``
runs the same generators through hypothesis for a CI-sized subset.

    .venv/bin/python bench/ros/safety_fuzz.py --commands 1000000 [--seed 0]

Prints a table and writes JSON (``--out``, default ``bench/results/ros/safety_fuzz.json``). Exit status 1 if any
invariant broke (the first violations are printed and saved).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ember.real.safety import CLAMPS, REJECTIONS  # noqa: E402
from ember.real.testing.fuzz import fuzz  # noqa: E402
from ember.real.testing.fuzz_oracle import Stats  # noqa: E402


def table(stats: Stats, seconds: float) -> str:
    rows = [
        ("commands", stats.commands),
        ("scenarios", stats.scenarios),
        ("accepted", stats.accepted),
        ("  of which clamped", stats.clamped),
    ]
    rows += [(f"  clamp: {k}", stats.clamps.get(k, 0)) for k in CLAMPS]
    rows += [("  position bound over velocity/accel", stats.position_overrides)]
    rows += [("rejected", sum(stats.rejected.values()))]
    rows += [(f"  {k}", stats.rejected.get(k, 0)) for k in (*REJECTIONS, "velocity", "acceleration")]
    rows += [
        ("holds", stats.holds),
        ("invariant violations", stats.violation_count),
        ("seconds", f"{seconds:.1f}"),
        ("commands / s", f"{stats.commands / max(seconds, 1e-9):,.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(
        f"{k:<{width}}  {v:>12,}" if isinstance(v, int) else f"{k:<{width}}  {v:>12}" for k, v in rows
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--events-per-scenario", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/ros/safety_fuzz.json")
    args = ap.parse_args(argv)
    logging.getLogger("ember.safety").setLevel(logging.ERROR)  # "workspace check is OFF", "e-stop reset"

    t0 = time.perf_counter()
    last = [t0]

    def progress(s: Stats) -> None:
        if time.perf_counter() - last[0] > 10:
            last[0] = time.perf_counter()
            print(
                f"  {s.commands:,} commands, {s.violation_count} violations, {last[0] - t0:.0f} s", flush=True
            )

    stats = fuzz(
        args.commands, seed=args.seed, events_per_scenario=args.events_per_scenario, progress=progress
    )
    seconds = time.perf_counter() - t0
    print(table(stats, seconds))
    for v in stats.violations:
        print("VIOLATION:", v)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    result = {
        "commands": stats.commands,
        "scenarios": stats.scenarios,
        "accepted": stats.accepted,
        "clamped": stats.clamped,
        "clamps": dict(stats.clamps),
        "rejected": dict(stats.rejected),
        "rejected_total": sum(stats.rejected.values()),
        "holds": stats.holds,
        "position_overrides": stats.position_overrides,
        "command_kinds": dict(stats.kinds),
        "violations": stats.violation_count,
        "first_violations": stats.violations,
        "seconds": round(seconds, 2),
        "seed": args.seed,
        "events_per_scenario": args.events_per_scenario,
        "commit": commit,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 1 if stats.violation_count else 0


if __name__ == "__main__":
    sys.exit(main())
