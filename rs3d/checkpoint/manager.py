"""A run's checkpoint folder: ``checkpoint_epoch_NNNNN.pyth`` files, the last K kept, plus the best one."""
from __future__ import annotations

import glob
import os
import re

from rs3d.checkpoint.io import save_atomic
from rs3d.utils.atomic import atomic_copy

_EPOCH_FILE = re.compile(r"checkpoint_epoch_(\d+)\.pyth$")


class CheckpointManager:
    """``checkpoint_epoch_NNNNN.pyth`` files in a folder: the last ``keep_last`` plus ``checkpoint_best.pyth``.

    Args:
        folder: where the checkpoints live (created on the first save).
        keep_last: how many epoch checkpoints to keep; older ones are deleted after each save.
    """

    def __init__(self, folder: str, keep_last: int = 3):
        self.folder, self.keep_last = folder, keep_last

    def path_for(self, epoch: int) -> str:
        return os.path.join(self.folder, f"checkpoint_epoch_{epoch:05d}.pyth")

    @property
    def best_path(self) -> str:
        return os.path.join(self.folder, "checkpoint_best.pyth")

    def latest(self) -> str | None:
        """Newest complete epoch checkpoint (temporary files never match)."""
        found = sorted((int(m.group(1)), p) for p in glob.glob(os.path.join(self.folder, "checkpoint_epoch_*.pyth"))
                       if (m := _EPOCH_FILE.search(p)))
        return found[-1][1] if found else None

    def save(self, epoch: int, state: dict, is_best: bool = False) -> str:
        """Write the epoch checkpoint (and the best copy), then prune old ones."""
        path = self.path_for(epoch)
        save_atomic(state, path)
        if is_best:
            atomic_copy(path, self.best_path)
        epochs = sorted(glob.glob(os.path.join(self.folder, "checkpoint_epoch_*.pyth")))
        for old in epochs[: max(0, len(epochs) - self.keep_last)]:
            os.remove(old)
        return path
