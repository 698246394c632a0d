"""A run's checkpoint folder: epoch and mid-epoch checkpoints (the last K kept), the best one, and picking the
newest one that is intact when a run resumes.

Names sort in training order, as strings and as (epoch, iteration): ``checkpoint_epoch_00003.pyth`` holds the
state after 3 complete epochs, ``checkpoint_epoch_00003_iter_0000120.pyth`` the state 120 iterations into the
4th. Each file has a ``.sha256`` beside it, written after the file itself: it marks the file complete and
catches later damage.
"""
from __future__ import annotations

import logging
import os
import re

from rs3d.checkpoint import kinds
from rs3d.checkpoint.finite import non_finite_parts
from rs3d.checkpoint.io import (
    CHECKSUM_SUFFIX,
    CheckpointError,
    NotACheckpointError,
    load_checkpoint,
    save_or_stop,
    verify_checkpoint,
)
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_copy

logger = logging.getLogger("rs3d")

_NAME = re.compile(r"checkpoint_epoch_(\d+)(?:_iter_(\d+))?\.pyth$")


def checkpoint_position(path: str) -> tuple[int, int] | None:
    """(completed epochs, iterations into the next epoch) of a checkpoint file name; None for other files."""
    m = _NAME.search(os.path.basename(path))
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


class CheckpointManager:
    """Epoch and mid-epoch checkpoints in a folder: the last ``keep_last`` plus ``checkpoint_best.pyth``.

    Args:
        folder: where the checkpoints live (created on the first save).
        keep_last: how many checkpoints (epoch or mid-epoch) to keep; older ones are deleted after each save.
    """

    def __init__(self, folder: str, keep_last: int = 3):
        self.folder, self.keep_last = folder, keep_last

    def path_for(self, epoch: int, iteration: int = 0) -> str:
        name = f"checkpoint_epoch_{epoch:05d}" + (f"_iter_{iteration:07d}" if iteration else "")
        return os.path.join(self.folder, name + ".pyth")

    @property
    def best_path(self) -> str:
        return os.path.join(self.folder, "checkpoint_best.pyth")

    def all(self) -> list[str]:
        """Checkpoint files, oldest first (temporary files and ``.sha256`` markers never match)."""
        try:
            names = paths.ls(self.folder)
        except (FileNotFoundError, NotADirectoryError, NotImplementedError):  # no folder yet; a store that cannot list
            return []
        found = [(pos, os.path.join(self.folder, name)) for name in names
                 if name.startswith("checkpoint_epoch_") and (pos := checkpoint_position(name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> str | None:
        """Newest checkpoint file by name (not verified; see :meth:`load_latest`)."""
        files = self.all()
        return files[-1] if files else None

    def load_latest(self) -> tuple[str, dict] | None:
        """The newest checkpoint that verifies, loads (on the CPU) and holds only finite values, as (path, state);
        the others are skipped with a warning naming them and are left where they are for inspection. A file a
        user put there (text, an HTML page, a Git LFS pointer: :mod:`rs3d.checkpoint.kinds`) is refused instead:
        skipping it could restart a run from scratch that only needed ``git lfs pull``."""
        skipped = []
        for path in reversed(self.all()):
            problem, state = _check(path, refuse_foreign=True)
            if state is not None:
                return self._report(skipped, path), state
            skipped.append(f"{os.path.basename(path)} ({problem})")
        self._report(skipped, None)
        return None

    @staticmethod
    def _report(skipped: list[str], chosen: str | None) -> str | None:
        if skipped:
            logger.warning("skipped damaged or non-finite checkpoint(s) %s; %s", ", ".join(skipped),
                           f"resuming from {os.path.basename(chosen)}" if chosen else "no intact one left")
        return chosen

    def check_foreign(self) -> None:
        """Refuse, before a run writes anything, a file a user put among the checkpoints (as :meth:`load_latest`
        would); reads the first bytes of each file without a ``.sha256``."""
        for path in self.all():
            if not paths.isfile(path + CHECKSUM_SUFFIX):
                what = kinds.describe_file(path)
                if what and kinds.is_foreign(what):
                    raise NotACheckpointError(_foreign_message(f"{path}: {what}"))

    def save_best(self, state: dict) -> str:
        """Write only ``checkpoint_best.pyth`` (and its checksum): a new best score at an epoch that writes no
        epoch checkpoint. A failed write raises :class:`~rs3d.checkpoint.io.CheckpointSaveError`."""
        save_or_stop(state, self.best_path)
        return self.best_path

    def save(self, epoch: int, state: dict, is_best: bool = False, iteration: int = 0) -> str:
        """Write a checkpoint and its checksum (and the best copy), then prune old ones. A failed write raises
        :class:`~rs3d.checkpoint.io.CheckpointSaveError` and leaves every earlier file as it was."""
        path = self.path_for(epoch, iteration)
        self._set_aside_if_damaged(path)
        save_or_stop(state, path)
        if is_best:
            try:
                atomic_copy(path, self.best_path)
                atomic_copy(path + CHECKSUM_SUFFIX, self.best_path + CHECKSUM_SUFFIX)
            except OSError:
                save_or_stop(state, self.best_path)  # raises the one-line error
        files = self.all()
        for old in files[: max(0, len(files) - self.keep_last)]:
            for name in (old, old + CHECKSUM_SUFFIX):
                if paths.exists(name):
                    paths.remove(name)
        return path

    def _set_aside_if_damaged(self, path: str) -> None:
        """A damaged file at the name about to be written (the run resumed from before it) is renamed to
        ``<name>.damaged`` rather than overwritten, so it can still be inspected."""
        if paths.exists(path) and _check(path)[1] is None:
            paths.move(path, path + ".damaged")
            logger.warning("kept the damaged %s as %s.damaged", path, os.path.basename(path))


def _check(path: str, refuse_foreign: bool = False) -> tuple[str | None, dict | None]:
    """(None, state) for an intact checkpoint (checksum, a CPU load, finite values), else (why not, None); with
    ``refuse_foreign``, a file that a user put there raises :class:`NotACheckpointError`."""
    problem = verify_checkpoint(path)
    if problem is None:
        try:
            state = load_checkpoint(path, "cpu")
        except NotACheckpointError as exc:
            if refuse_foreign and exc.foreign:
                raise NotACheckpointError(_foreign_message(str(exc))) from None
            return str(exc).split(": ", 1)[-1], None
        except CheckpointError as exc:
            return str(exc).split(": ", 1)[-1], None
        bad = non_finite_parts(state) if isinstance(state, dict) else []
        if not bad:
            return None, state
        problem = f"NaN/Inf in its {', '.join(bad)} state"
    return problem, None


def _foreign_message(refusal: str) -> str:
    return f"{refusal}; the run cannot resume past it: move it out of the checkpoints folder (or replace it) and rerun"
