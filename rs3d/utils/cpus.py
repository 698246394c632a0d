"""How many CPUs this process may really use: its affinity mask (``taskset``, a batch scheduler's cpuset) and its
cgroup's CPU quota (a container's or Slurm job's ``--cpus``: cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``).

``os.cpu_count()`` reports the host's cores; a container limited to 4 CPUs on a 128-core host would otherwise
start 127 loader workers that share 4 CPUs' worth of time.
"""
from __future__ import annotations

import math
import os

CGROUP_ROOT = "/sys/fs/cgroup"


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (all of them where the OS has no masks)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:  # kernel files under /proc and /sys: always local
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroups(proc_file: str = "/proc/self/cgroup") -> dict[str, str]:
    """Controller ("" for cgroup v2) -> this process's cgroup path, from /proc/self/cgroup."""
    found = {}
    for line in (_read(proc_file) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[2]
    return found


def _ancestors(root: str, path: str) -> list[str]:
    """``root/path`` and each folder above it up to ``root`` (a quota on any of them applies)."""
    parts = [p for p in path.split("/") if p]
    return [os.path.join(root, *parts[:n]) for n in range(len(parts), -1, -1)]


def cgroup_cpu_limit(root: str = CGROUP_ROOT, proc_file: str = "/proc/self/cgroup") -> float | None:
    """The smallest CPU quota (in CPUs, e.g. 2.5) on this process's cgroup or its parents; None when unlimited."""
    groups, limits = _own_cgroups(proc_file), []
    if "" in groups:  # cgroup v2: "max 100000" or "250000 100000"
        for folder in _ancestors(root, groups[""]):
            fields = (_read(os.path.join(folder, "cpu.max")) or "").split()
            if len(fields) == 2 and fields[0] != "max" and fields[0].isdigit() and int(fields[1]) > 0:
                limits.append(int(fields[0]) / int(fields[1]))
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu") if "cpu" in groups else ():  # cgroup v1 (mount names vary)
        for folder in _ancestors(os.path.join(root, mount), groups["cpu"]):
            quota, period = _read(os.path.join(folder, "cpu.cfs_quota_us")), _read(
                os.path.join(folder, "cpu.cfs_period_us"))
            if quota and period and quota.lstrip("-").isdigit() and int(quota) > 0 and int(period) > 0:
                limits.append(int(quota) / int(period))
    return min(limits) if limits else None


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask, lowered to its cgroup quota (rounded up) where there is one."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_limit()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def auto_workers(cpus: int, local_processes: int = 1, most: int = 16) -> int:
    """Loader workers per training process: its share of ``cpus`` minus one (the process itself), at least one
    (a worker keeps a decoder crash out of the trainer), at most ``most`` (more rarely help and cost memory)."""
    share = cpus // max(1, local_processes)
    return max(1, min(most, share - 1))
