"""Process-group setup from the torchrun environment, or Slurm's under ``srun`` (NCCL on GPUs, gloo on CPU), and
rank helpers."""
from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: global rank, world size, local rank and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list: ``gpu[07-09,12],cpu1`` -> ``gpu07`` (what ``scontrol show hostnames``
    would print first; zero padding kept)."""
    match = re.match(r"\s*([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if not match:
        raise ValueError(f"not a Slurm node list: {nodelist!r}")
    prefix, ranges = match.groups()
    return prefix + (ranges.split(",")[0].split("-")[0] if ranges else "")


def slurm_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) for a process
    that ``srun`` started as one task of a multi-task step, from Slurm's own; empty when torchrun set them already,
    or outside such a step (a batch script's own shell runs one process, whatever ``--ntasks`` says).

    The master is the step's first node; the port is ``MASTER_PORT`` if given, else 20000 + the job id modulo
    20000, so that two jobs sharing a node do not collide."""
    if "RANK" in environ and "WORLD_SIZE" in environ:
        return {}
    tasks = int(environ.get("SLURM_STEP_NUM_TASKS", "1") or 1)
    if tasks <= 1 or "SLURM_PROCID" not in environ:
        return {}
    nodes = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or "127.0.0.1"
    per_node = environ.get("SLURM_STEP_TASKS_PER_NODE") or environ.get("SLURM_TASKS_PER_NODE") or str(tasks)
    return {
        "RANK": environ["SLURM_PROCID"],
        "WORLD_SIZE": str(tasks),
        "LOCAL_RANK": environ.get("SLURM_LOCALID", "0"),
        "LOCAL_WORLD_SIZE": per_node.split("(")[0].split(",")[0],
        "MASTER_ADDR": environ.get("MASTER_ADDR") or first_host(nodes),
        "MASTER_PORT": environ.get("MASTER_PORT") or str(20000 + int(environ.get("SLURM_JOB_ID", "0")) % 20000),
    }


def init_distributed(device: str = "auto", timeout_minutes: float = 180.0) -> DistInfo:
    """Join the process group torchrun describes (RANK/WORLD_SIZE/LOCAL_RANK), or Slurm's when ``srun`` started
    the tasks without torchrun (:func:`slurm_environment`, copied into the environment); single process otherwise.

    ``timeout_minutes`` bounds how long a collective waits for the slowest rank (TRAIN.DIST_TIMEOUT_MINUTES).
    """
    os.environ.update(slurm_environment())
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        timeout = datetime.timedelta(minutes=timeout_minutes)
        backend = "nccl" if use_cuda else "gloo"
        store = _restart_store(rank, world, timeout)
        if store is None:
            dist.init_process_group(backend, timeout=timeout)
        else:
            dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    return DistInfo(rank, world, local, dev)


def _restart_store(rank: int, world: int, timeout: datetime.timedelta) -> dist.Store | None:
    """After a torchrun restart (``--max-restarts``), the agent's store still holds the dead workers' addresses
    under the process group's keys; the new workers could read a stale one and wait on a closed port ("Gloo
    connectFullMesh failed ... Connection refused", seen on every other restart here). A prefix per restart
    attempt gives each attempt keys of its own. None when this is not a restarted torchrun worker."""
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if attempt == "0" or "MASTER_ADDR" not in os.environ:
        return None
    agent_serves = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=not agent_serves and rank == 0, timeout=timeout)
    return dist.PrefixStore(f"rs3d/restart_{attempt}", store)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Average a tensor over ranks (identity when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value


def cleanup() -> None:
    """End a finished run's process group: every rank waits for the others first, so no rank tears its group down
    (and exits) while rank 0 still writes the final files; gloo aborted such a rank ("terminate called without an
    active exception", SIGABRT), which torchrun reports as a failed run."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
