"""What the soak run (``ember.real.soak``) reads from the host: each node process's memory and CPU time, the
machine's CPU shares (steal, the soak's nodes, everything else) from ``/proc``, and SCHED_FIFO for the nodes.
"""

from __future__ import annotations

import os


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


def machine_cpu_jiffies_or_empty() -> dict[str, int]:
    """:func:`machine_cpu_jiffies`, or empty where ``/proc/stat`` cannot be read."""
    try:
        return machine_cpu_jiffies()
    except (OSError, StopIteration, ValueError):
        return {}
