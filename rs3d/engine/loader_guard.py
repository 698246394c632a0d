"""Surviving a DataLoader worker that dies in native code (a decoder segfault on a pathological file).

Python cannot catch a segfault inside a worker; PyTorch reports it in the main process as a RuntimeError
("DataLoader worker (pid ...) is killed by signal" / "exited unexpectedly"). :class:`LoaderGuard` then names the
video that worker was decoding (the dataset's :class:`~rs3d.data.dataset.InFlight` record), excludes it (it
is replaced like any unreadable video, and listed in ``OUTPUT_DIR/crashed_videos.txt`` so later runs skip it
too), and restarts the loader at the first batch not yet trained on. Per-sample augmentation depends only on
(seed, epoch, index), so the restarted loader yields the same batches as before, the culprit's replacement aside.
After ``max_crashes`` crashes the run stops cleanly (exit status 3) and resumes from its last checkpoint.

A stop is not a crash. A worker counts as crashed on its video only when it died of a fault (SIGSEGV, SIGBUS,
SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP) or exited with an error status of its own, and the trainer has not been
asked to stop (its own stop flag, looked at again after a short grace period, since a signal sent to the whole
process group reaches the trainer and its workers together). A worker killed by SIGTERM, SIGINT, SIGHUP, SIGKILL
(a scheduler, a terminal, the out-of-memory killer) excludes nothing: the loader restarts at the same batch, so no
video is lost and an exact resume stays exact. rs3d's own workers ignore signals sent to the group
(``rs3d.data.workers``), so this is the fallback for deaths that still happen.
"""
from __future__ import annotations

import logging
import re
import signal
import time
from collections.abc import Callable, Iterator

from torch.utils.data import DataLoader
from torch.utils.data._utils import signal_handling

from rs3d.utils import paths
from rs3d.utils.appending import append_text
from rs3d.utils.errors import RunStoppedError

logger = logging.getLogger("rs3d")
_PIDS = re.compile(r"DataLoader worker \(pids?(?:\(s\))? ([\d, ]+)\)")


def keep_worker_deaths_synchronous() -> None:
    """Stop torch from installing its SIGCHLD handler, which raises a worker's death as a RuntimeError wherever the
    main process happens to be, e.g. halfway through an optimizer step (seen in CI), where nothing can recover.
    Without it the loader notices the dead worker itself when asked for a batch (within its 5 s status check),
    inside :meth:`LoaderGuard.batches`. torch has no public switch for this; its module flag says "already set"."""
    if not signal_handling._SIGCHLD_handler_set:
        signal_handling._SIGCHLD_handler_set = True


class LoaderCrashError(RunStoppedError):
    """DataLoader workers kept dying; the run stopped, its checkpoints intact."""


#: Signals by which a process dies of a fault in its own code (a decoder bug), as opposed to being told to stop.
FAULT_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT,
                           signal.SIGSYS, signal.SIGTRAP})


def is_decoder_fault(exitcode: int | None) -> bool:
    """Whether a worker's exit status (``multiprocessing.Process.exitcode``: -N = killed by signal N) says it died
    of its own fault: a fault signal or a non-zero exit status. Killed by any other signal, exited with 0 (torch's
    worker after a KeyboardInterrupt) or still running: no."""
    if exitcode is None:
        return False
    return exitcode > 0 or (exitcode < 0 and -exitcode in FAULT_SIGNALS)


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def worker_exit_codes(iterator, pids: set[int] | None) -> dict[int, int | None]:
    """pid -> exit status of the loader iterator's workers named by ``pids`` (every dead one when None)."""
    workers = getattr(iterator, "_workers", [])
    return {w.pid: w.exitcode for w in workers
            if (w.pid in pids if pids is not None else w.exitcode is not None)}


class LoaderGuard:
    """Iterates an epoch's training batches, restarting the loader after a worker death.

    Args:
        loader: the training loader (an :class:`~rs3d.data.epoch_sampler.EpochSampler` sampler, a dataset with
            ``in_flight`` and ``exclude``).
        record_file: where crashing videos are listed, one path a line (read back at start).
        max_crashes: worker deaths survived per run before stopping.
        stop_requested: the trainer's stop flag (a stop signal received); a worker death while it is set is
            never a decode crash.
        grace_s: how long a death waits for that flag before it is judged.
    """

    def __init__(self, loader: DataLoader, record_file: str, max_crashes: int = 10,
                 stop_requested: Callable[[], bool] | None = None, grace_s: float = 1.0):
        self.loader, self.record_file, self.max_crashes = loader, record_file, max_crashes
        self.stop_requested, self.grace_s = stop_requested or (lambda: False), grace_s
        keep_worker_deaths_synchronous()
        self.crashes = 0  # deaths judged decoder crashes, and unexplained ones
        self.stops = 0  # deaths that came with a stop: nothing excluded
        self._iterator = None
        for path in self._recorded():
            self._exclude(path)

    def batches(self, epoch: int, start: int, stop: int) -> Iterator:
        """Batches ``start`` .. ``stop - 1`` of ``epoch``."""
        done = start
        while done < stop:
            self.loader.sampler.set_epoch(epoch, skip=done * self.loader.batch_size)
            iterator = self._iterator = iter(self.loader)
            try:
                while done < stop:
                    batch = next(iterator)
                    done += 1
                    yield batch
                return
            except StopIteration:
                return
            except RuntimeError as exc:
                if "DataLoader worker" not in str(exc):
                    raise
                self._handle_death(str(exc).splitlines()[0], iterator, epoch, done)

    def _stopping(self) -> bool:
        """The trainer's stop flag, waited for up to ``grace_s`` (the trainer's handler may run a moment after the
        worker died of the same signal)."""
        deadline = time.monotonic() + self.grace_s
        while not self.stop_requested() and time.monotonic() < deadline:
            time.sleep(0.02)  # signal handlers run meanwhile
        return self.stop_requested()

    def _handle_death(self, message: str, iterator, epoch: int, done: int) -> None:
        match = _PIDS.search(message)
        pids = {int(p) for p in match.group(1).replace(",", " ").split()} if match else None
        codes = worker_exit_codes(iterator, pids)
        how = ", ".join(f"pid {pid} {describe_exit(code)}" for pid, code in sorted(codes.items())) or "unknown"
        faults = {pid for pid, code in codes.items() if is_decoder_fault(code)}
        if self._stopping():
            self.stops += 1
            logger.warning("%s (%s) while the run is stopping: not a decoder crash, nothing is excluded; restarting "
                           "the loader at epoch %d, iteration %d to finish the step", message, how, epoch + 1, done + 1)
        elif not faults and codes:
            self._count(message, how)
            logger.warning("%s (%s): not a decoder fault (a signal from outside, e.g. the out-of-memory killer), "
                           "nothing is excluded; restarting the loader at epoch %d, iteration %d", message, how,
                           epoch + 1, done + 1)
        else:
            self._crashed(message, how, faults or pids, epoch, done)
        self._restart(iterator)

    def _count(self, message: str, how: str, named: str = "") -> None:
        self.crashes += 1
        if self.crashes > self.max_crashes:
            raise LoaderCrashError(f"{message} ({how}{', decoding ' + named if named else ''}); {self.crashes} worker "
                                   f"deaths in this run, stopping: check the videos with tools/check_dataset.py, then "
                                   f"rerun to resume")

    def _crashed(self, message: str, how: str, pids: set[int] | None, epoch: int, done: int) -> None:
        dataset = self.loader.dataset
        culprits = dataset.in_flight.paths(pids) if hasattr(dataset, "in_flight") else []
        named = ", ".join(culprits) if culprits else "unknown video"
        self._count(message, how, named)
        for path in culprits:
            self._exclude(path)
            self._record(path)
        logger.error("%s (%s) while decoding %s; it is skipped from now on (listed in %s); restarting the loader at "
                     "epoch %d, iteration %d", message, how, named, self.record_file, epoch + 1, done + 1)

    def _restart(self, iterator) -> None:
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown:
            shutdown()
        if getattr(self.loader, "_iterator", None) is iterator:  # persistent workers: build new ones
            self.loader._iterator = None
        if hasattr(self.loader.dataset, "in_flight"):
            self.loader.dataset.in_flight.clear()
        self._iterator = None

    def close(self, at_once: bool = False) -> None:
        """Shut the loader's workers down (the trainer's cleanup, on every exit path). ``at_once``: terminate them
        first instead of letting them finish the clip they are decoding (a second Ctrl-C)."""
        iterator, self._iterator = self._iterator or getattr(self.loader, "_iterator", None), None
        if iterator is None:
            return
        workers = list(getattr(iterator, "_workers", []))
        if at_once:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()  # from the main process: rs3d's workers exit on it
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown:
            shutdown()
        if getattr(self.loader, "_iterator", None) is iterator:
            self.loader._iterator = None
        for worker in workers:  # one that ignored everything (a decoder stuck in native code)
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=1)

    def _exclude(self, path: str) -> None:
        if hasattr(self.loader.dataset, "exclude"):
            self.loader.dataset.exclude(path, "a DataLoader worker died decoding it (listed in crashed_videos.txt)")

    def _recorded(self) -> list[str]:
        if not paths.isfile(self.record_file):
            return []
        return [line for line in paths.read_text(self.record_file).splitlines() if line.strip()]

    def _record(self, path: str) -> None:
        if path not in self._recorded():  # any rank: one short O_APPEND write per line (on local disk)
            append_text(self.record_file, path + "\n")
