"""Who used the benchmark's CPUs during a run: the server's process group, wrk, and anything
else, so that a disturbed run can be told apart from a clean one."""

from __future__ import annotations

import os
import resource

import psutil


def cpu_busy_seconds(cpu: int) -> float:
    """CPU time spent on `cpu` by anything (user, nice, system, irq, softirq, steal)."""
    times = psutil.cpu_times(percpu=True)[cpu]
    return sum(
        getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")
    )


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every live process in process group `pgid`."""
    total = 0.0
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid:
                times = process.cpu_times()
                total += times.user + times.system
        except (psutil.Error, ProcessLookupError):
            continue
    return total


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def waited_seconds(pid: int) -> float:
    """Time the threads of `pid` spent runnable but waiting for a CPU, so far (the scheduler's
    run-queue time, /proc/PID/task/TID/schedstat, which psutil does not report)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as stat:
                total += int(stat.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9
