"""Process setup shared by training, testing and tools: seeding, determinism, CPU threads, peak memory."""
from __future__ import annotations

import random
import resource

import numpy as np
import torch

from rs3d.utils.cpus import usable_cpus


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; optionally require deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    configure_speed(deterministic)


def configure_speed(deterministic: bool = False) -> None:
    """The GPU speed settings every run and benchmark uses: cuDNN autotuning (off when determinism is asked for)
    and TF32 for fp32 matmuls and convolutions (fp32 rows of a benchmark then run as the trainer's would)."""
    torch.backends.cudnn.benchmark = not deterministic and torch.cuda.is_available()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def available_cores() -> int:
    """CPU cores this process may run on: its affinity mask and its cgroup's CPU quota (``rs3d.utils.cpus``)."""
    return usable_cpus()


def limit_cpu_threads(num_workers: int, processes_per_machine: int = 1) -> int:
    """On CPU, leave one core per loader worker: oversubscribed OpenMP threads spin and can slow steps 10x."""
    threads = max(1, available_cores() // max(1, processes_per_machine) - num_workers)
    torch.set_num_threads(threads)
    return threads


def cpu_peak_memory_mb() -> float:
    """Peak resident memory of this process. Linux's VmHWM belongs to this process image alone; ru_maxrss would
    also carry the parent's peak across the fork that starts a spawned process."""
    try:
        with open("/proc/self/status") as f:  # the kernel's own file, not storage
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA max allocated, or this process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return cpu_peak_memory_mb()
