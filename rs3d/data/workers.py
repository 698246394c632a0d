"""DataLoader worker processes: how many (``DATA_LOADER.NUM_WORKERS``, "auto" by default) and how they treat stop
signals.

A stop signal sent to the whole process group (``timeout``, Slurm's preemption, ``kill -- -PGID``, Ctrl-C in a
terminal) reaches the loader workers too. torch's worker SIGTERM handler exits on it, and Ctrl-C raises
KeyboardInterrupt in them, so the workers died with the trainer's batch half-decoded and the trainer mistook that
for a decoder crash. :func:`shield_from_stop_signals` runs first in every worker: SIGINT, SIGHUP and SIGUSR1 are
ignored, and SIGTERM is taken by a thread that exits the worker only when the main process sent it (that is how
torch and multiprocessing shut down a worker that does not stop by itself); from anyone else it is ignored. The
trainer handles the stop and shuts its workers down; orphaned workers still exit (torch's watchdog sees their
parent gone).
"""
from __future__ import annotations

import functools
import os
import signal
import threading

from rs3d.utils.cpus import auto_workers, usable_cpus

AUTO = "auto"
MAX_AUTO_WORKERS = 16
#: Signals a scheduler or a terminal sends to a whole job; a loader worker ignores them (see the module).
GROUP_STOP_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


def local_processes() -> int:
    """Training processes on this machine: torchrun's LOCAL_WORLD_SIZE (1 outside torchrun)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def resolve_num_workers(value: int | str) -> int:
    """``DATA_LOADER.NUM_WORKERS`` as a count: an int as it is; "auto" is this process's share of the usable CPUs
    (affinity and cgroup quota) minus one, between 1 and :data:`MAX_AUTO_WORKERS`."""
    if value == AUTO:
        return auto_workers(usable_cpus(), local_processes(), MAX_AUTO_WORKERS)
    return int(value)


def describe_num_workers(value: int | str) -> str:
    """One line for the log: the worker count and, for "auto", where it comes from."""
    count = resolve_num_workers(value)
    if value != AUTO:
        return f"{count} loader workers per process (DATA_LOADER.NUM_WORKERS {value})"
    return (f"{count} loader workers per process (DATA_LOADER.NUM_WORKERS auto: {usable_cpus()} usable CPUs shared "
            f"by {local_processes()} local process(es), minus one for the process itself, at most {MAX_AUTO_WORKERS})")


def shield_from_stop_signals(worker_id: int, main_pid: int) -> None:
    """``worker_init_fn`` of every rs3d loader (bind ``main_pid`` with :func:`worker_init_fn`): ignore the signals a
    scheduler or terminal sends to the whole group; exit on SIGTERM only when ``main_pid`` (or the parent) sent it."""
    for sig in GROUP_STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if not hasattr(signal, "sigwaitinfo"):  # no sender information (macOS): keep torch's SIGTERM handling
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # threads started later (decoders) inherit it
    senders = {main_pid, os.getppid()}

    def wait_for_terminate() -> None:
        while True:
            info = signal.sigwaitinfo({signal.SIGTERM})
            if info.si_pid in senders:
                os._exit(0)  # as torch's own worker handler does for its parent's SIGTERM

    threading.Thread(target=wait_for_terminate, name="rs3d-sigterm", daemon=True).start()


def worker_init_fn() -> functools.partial:
    """The ``worker_init_fn`` for a loader built in this process (picklable, for spawned workers too)."""
    return functools.partial(shield_from_stop_signals, main_pid=os.getpid())
