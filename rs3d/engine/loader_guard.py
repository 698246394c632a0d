"""Surviving a DataLoader worker that dies in native code (a decoder segfault on a pathological file).

Python cannot catch a segfault inside a worker; PyTorch reports it in the main process as a RuntimeError
("DataLoader worker (pid ...) is killed by signal" / "exited unexpectedly"). :class:`LoaderGuard` then names the
video that worker was decoding (the dataset's :class:`~rs3d.data.dataset.InFlight` record), excludes it (it
is replaced like any unreadable video, and listed in ``OUTPUT_DIR/crashed_videos.txt`` so later runs skip it
too), and restarts the loader at the first batch not yet trained on. Per-sample augmentation depends only on
(seed, epoch, index), so the restarted loader yields the same batches as before, the culprit's replacement aside.
After ``max_crashes`` crashes the run stops cleanly (exit status 3) and resumes from its last checkpoint.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator

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


class LoaderGuard:
    """Iterates an epoch's training batches, restarting the loader after a worker death.

    Args:
        loader: the training loader (an :class:`~rs3d.data.samplers.EpochSampler` sampler, a dataset with
            ``in_flight`` and ``exclude``).
        record_file: where crashing videos are listed, one path a line (read back at start).
        max_crashes: worker deaths survived per run before stopping.
    """

    def __init__(self, loader: DataLoader, record_file: str, max_crashes: int = 10):
        self.loader, self.record_file, self.max_crashes = loader, record_file, max_crashes
        keep_worker_deaths_synchronous()
        self.crashes = 0
        for path in self._recorded():
            self._exclude(path)

    def batches(self, epoch: int, start: int, stop: int) -> Iterator:
        """Batches ``start`` .. ``stop - 1`` of ``epoch``."""
        done = start
        while done < stop:
            self.loader.sampler.set_epoch(epoch, skip=done * self.loader.batch_size)
            iterator = iter(self.loader)
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
                self._handle_crash(str(exc).splitlines()[0], iterator, epoch, done)

    def _handle_crash(self, message: str, iterator, epoch: int, done: int) -> None:
        self.crashes += 1
        match = _PIDS.search(message)
        pids = {int(p) for p in match.group(1).replace(",", " ").split()} if match else None
        dataset = self.loader.dataset
        culprits = dataset.in_flight.paths(pids) if hasattr(dataset, "in_flight") else []
        named = ", ".join(culprits) if culprits else "unknown video"
        if self.crashes > self.max_crashes:
            raise LoaderCrashError(f"{message} (decoding {named}); {self.crashes} worker deaths in this run, "
                                   f"stopping: check the videos with tools/check_dataset.py, then rerun to resume")
        for path in culprits:
            self._exclude(path)
            self._record(path)
        logger.error("%s while decoding %s; it is skipped from now on (listed in %s); restarting the loader at "
                     "epoch %d, iteration %d", message, named, self.record_file, epoch + 1, done + 1)
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown:
            shutdown()
        if getattr(self.loader, "_iterator", None) is iterator:  # persistent workers: build new ones
            self.loader._iterator = None
        if hasattr(dataset, "in_flight"):
            dataset.in_flight.clear()

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
