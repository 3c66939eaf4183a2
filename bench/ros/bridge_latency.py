"""How much latency the bridge adds between an observation and the command that reaches the arm.

Setup (real DDS over loopback; the real ``ember-bridge`` executable in its own process):

- this process plays the arm and the policy: every cycle (``--rate`` Hz) it publishes a ``JointState`` (the
  observation) and, after ``--policy-ms`` of simulated compute, the action computed from it, twice: on
  ``/ember/action`` for the bridge, and straight to a private command topic (what a policy without a bridge
  would send to the controller);
- the bridge checks the action (freshness, limits, step, velocity, forward kinematics for the workspace) and
  publishes the ``JointTrajectory`` on the controller topic; this process receives both commands.

Which cycle a command belongs to is read from the command itself: joint 7 carries a cycle code (a triangle wave
of 1e-4 rad steps, far inside every limit), so nothing is added to the messages. Per cycle:

    obs -> command   = t(bridge's command received) - t(observation published) - policy compute
    added by bridge  = (t(bridge's command received) - t(action published))
                       - (t(direct command received) - t(direct command published))

The second is measured in the same cycle under the same load, so it isolates the bridge (its extra DDS hop and
its processing) from the machine's noise. ``missed`` cycles: commands that never came or came more than one
period after their observation.

    .venv/bin/python bench/ros/bridge_latency.py --cycles 10000 --rate 100 [--realtime 50]

Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CODE_JOINT = 6
CODE_STEP = 1e-4
PERIOD_CODES = 400
DIRECT_TOPIC = "/bench/direct_command"


def code(k: int) -> int:
    """Triangle wave 0..200..0: consecutive cycles differ by one step, so the command stays slow and smooth."""
    r = k % PERIOD_CODES
    return r if r <= PERIOD_CODES // 2 else PERIOD_CODES - r


def match(received: list[tuple[float, float]], t_sent: np.ndarray, home: float) -> np.ndarray:
    """Receipt time per cycle (NaN: never arrived): the latest cycle with the command's code sent before it."""
    out = np.full(len(t_sent), np.nan)
    for t_recv, pos in received:
        c = int(round((pos - home) / CODE_STEP))
        k = int(np.searchsorted(t_sent, t_recv)) - 1
        while k >= 0 and code(k) != c:
            k -= 1
        if k >= 0 and np.isnan(out[k]):
            out[k] = t_recv
    return out


def percentiles(values_ms: np.ndarray) -> dict[str, float]:
    v = values_ms[~np.isnan(values_ms)]
    return {
        "p50": float(np.percentile(v, 50)),
        "p90": float(np.percentile(v, 90)),
        "p99": float(np.percentile(v, 99)),
        "max": float(v.max()),
        "mean": float(v.mean()),
    }


def run(args: argparse.Namespace) -> dict:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    from ember.real import ros
    from ember.real.robot import home_state, load_robot
    from ember.real.testing.processes import Probe, ros_env, start_node

    env = ros_env()
    robot = load_robot("panda")
    names = list(robot.state_names)
    home = home_state(robot)
    out_dir = Path(args.out).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    bridge = start_node(
        "bridge",
        {
            "rate_hz": args.rate,
            "policy_timeout_ms": 2000.0,
            "status_rate_hz": 0.5,
            "realtime_priority": args.realtime,
        },
        env,
        out_dir,
        name="bench_bridge",
    )
    probe = None
    try:
        probe = Probe("bench_arm", domain_id=int(env["ROS_DOMAIN_ID"]))
        via_bridge: list[tuple[float, float]] = []  # (monotonic receipt time, joint-7 position)
        direct: list[tuple[float, float]] = []
        deep = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        probe.node.create_subscription(
            JointTrajectory,
            ros.CONTROLLER_TOPIC,
            lambda m: via_bridge.append((time.monotonic(), m.points[0].positions[CODE_JOINT])),
            deep,
        )
        probe.node.create_subscription(
            JointTrajectory,
            DIRECT_TOPIC,
            lambda m: direct.append((time.monotonic(), m.points[0].positions[CODE_JOINT])),
            deep,
        )
        probe.subscribe("/ember/bridge/status", String, ros.qos_latched())
        state_pub = probe.node.create_publisher(JointState, ros.JOINT_STATES_TOPIC, ros.qos_command())
        action_pub = probe.node.create_publisher(JointState, ros.ACTION_TOPIC, ros.qos_command())
        direct_pub = probe.node.create_publisher(JointTrajectory, DIRECT_TOPIC, ros.qos_command())
        deadline = time.monotonic() + 30
        while (
            action_pub.get_subscription_count() < 1
            or state_pub.get_subscription_count() < 1
            or probe.node.count_publishers(ros.CONTROLLER_TOPIC) < 1
            or direct_pub.get_subscription_count() < 1
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("discovery timed out\n" + bridge.output())
            probe.executor.spin_once(timeout_sec=0.05)
        time.sleep(1.0)

        # receive in a thread of its own while the main thread keeps the cycle clock
        probe.executor.remove_node(probe.node)
        spinner = SingleThreadedExecutor(context=probe.context)
        spinner.add_node(probe.node)
        stop = threading.Event()
        thread = threading.Thread(
            target=lambda: [spinner.spin_once(timeout_sec=0.05) for _ in iter(stop.is_set, True)], daemon=True
        )
        thread.start()

        n = args.warmup + args.cycles
        t_obs, t_act, t_dir, compute = (np.zeros(n) for _ in range(4))
        period = 1.0 / args.rate
        state = JointState(name=names)
        action = JointState(name=names)
        command = ros.joint_trajectory(names, home, period)
        gc.collect()
        gc.freeze()
        gc.disable()
        start = time.monotonic() + 0.1
        for k in range(n):
            q = home.copy()
            q[CODE_JOINT] += CODE_STEP * code(k)
            positions = q.tolist()
            wake = start + k * period
            while (delay := wake - time.monotonic()) > 0.0015:
                time.sleep(delay - 0.001)
            while time.monotonic() < wake:
                pass
            stamp = ros.sec_to_stamp(time.time())
            state.header.stamp, state.position = stamp, positions
            t0 = time.monotonic()
            state_pub.publish(state)
            t1 = time.monotonic()
            while time.monotonic() - t1 < args.policy_ms / 1e3:  # the policy's compute
                pass
            action.header.stamp, action.position = stamp, positions
            t2 = time.monotonic()
            action_pub.publish(action)
            command.points[0].positions = positions
            t3 = time.monotonic()
            direct_pub.publish(command)
            t_obs[k], t_act[k], t_dir[k], compute[k] = t0, t2, t3, t2 - t1
        time.sleep(0.5)
        gc.enable()
        stop.set()
        thread.join(timeout=2)
        spinner.remove_node(probe.node)
        probe.executor.add_node(probe.node)
        # the latest status: every action counted, or (if the bridge dropped some under load) no more coming
        last, since = -1, time.monotonic()
        while time.monotonic() - since < 5.0:
            probe.executor.spin_once(timeout_sec=0.1)
            actions = probe.json("/ember/bridge/status").get("actions", -1)
            if actions >= n:
                break
            if actions != last:
                last, since = actions, time.monotonic()
        status = probe.json("/ember/bridge/status")
    finally:
        bridge.stop()  # never leave the bridge running, even when the run fails
        if probe is not None:
            probe.close()

    w = slice(args.warmup, None)
    recv_b = match(via_bridge, t_act, home[CODE_JOINT])[w]
    recv_d = match(direct, t_dir, home[CODE_JOINT])[w]
    obs_to_cmd = (recv_b - t_obs[w] - compute[w]) * 1e3
    added = ((recv_b - t_act[w]) - (recv_d - t_dir[w])) * 1e3
    direct_ms = (recv_d - t_dir[w]) * 1e3
    missing = int(np.isnan(recv_b).sum())
    late = int(
        (obs_to_cmd[~np.isnan(obs_to_cmd)] + compute[w][~np.isnan(obs_to_cmd)] * 1e3 > period * 1e3).sum()
    )
    return {
        "cycles": args.cycles,
        "rate_hz": args.rate,
        "policy_ms": args.policy_ms,
        "realtime_priority": args.realtime,
        "obs_to_command_ms": percentiles(obs_to_cmd),
        "added_by_bridge_ms": percentiles(added),
        "direct_command_ms": percentiles(direct_ms),
        "bridge_processing_ms": status.get("latency_ms", {}),
        "missing": missing,
        "late": late,
        "missed_cycles": missing + late,
        "direct_missing": int(np.isnan(recv_d).sum()),
        "bridge_actions_received": status["actions"],
        "bridge_passed": status["safety"]["passed"],
        "bridge_rejected": status["safety"]["rejected"],
        "policy_compute_ms_mean": float(compute[w].mean() * 1e3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--policy-ms", type=float, default=0.0, help="simulated policy compute per cycle")
    parser.add_argument(
        "--realtime",
        type=int,
        default=0,
        help="SCHED_FIFO priority for the bridge and this process (0: normal scheduling)",
    )
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "ros_bridge_latency.json"))
    args = parser.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if args.realtime:
        from ember.real.ros import set_realtime_priority

        problem = set_realtime_priority(args.realtime)
        if problem:
            print(f"warning: {problem}")
    load_before = os.getloadavg()
    result = run(args)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "rmw": os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp"),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "target": "added by the bridge: p99 <= 2 ms beyond the policy's compute; 0 missed cycles",
        **result,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\n{args.cycles} cycles at {args.rate:g} Hz, policy compute {args.policy_ms:g} ms (subtracted), "
        f"SCHED_FIFO {args.realtime or 'off'}, load average {load_before[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'':<34}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    for label, key in (
        ("observation -> command (via bridge)", "obs_to_command_ms"),
        ("added by the bridge (same cycle)", "added_by_bridge_ms"),
        ("direct command, no bridge", "direct_command_ms"),
    ):
        r = result[key]
        print(f"{label:<34}{r['p50']:>8.3f}{r['p90']:>8.3f}{r['p99']:>8.3f}{r['max']:>8.2f}")
    proc = result["bridge_processing_ms"]
    print(
        f"bridge callback alone (last {proc.get('n', 0)}): p50 {proc.get('p50', float('nan')):.3f} ms, "
        f"p99 {proc.get('p99', float('nan')):.3f} ms"
    )
    print(
        f"missed cycles: {result['missed_cycles']} (missing {result['missing']}, late {result['late']}); "
        f"bridge passed {result['bridge_passed']}, rejected {result['bridge_rejected']}"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
