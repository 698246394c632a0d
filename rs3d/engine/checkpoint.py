"""Checkpoints that survive crashes: atomic writes, last-K + best retention, safe (weights-only) loading."""
from __future__ import annotations

import glob
import logging
import os
import pickle
import random
import re
import shutil
import tempfile
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

_EPOCH_FILE = re.compile(r"checkpoint_epoch_(\d+)\.pyth$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file."""


def save_atomic(obj: Any, path: str) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename: a crash never leaves half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".pyth", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict:
    """Load with ``weights_only=True``; a file carrying pickled code or objects is refused with a clear error."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: refused, it holds pickled objects or code beyond tensors and plain "
                              f"containers (loaded with weights_only=True): {first}") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0][:160]})") from None


class CheckpointManager:
    """``checkpoint_epoch_NNNNN.pyth`` files in a folder: the last ``keep_last`` plus ``checkpoint_best.pyth``."""

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
            tmp = self.best_path + ".tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, self.best_path)
        epochs = sorted(glob.glob(os.path.join(self.folder, "checkpoint_epoch_*.pyth")))
        for old in epochs[: max(0, len(epochs) - self.keep_last)]:
            os.remove(old)
        return path


def rng_state() -> dict:
    """Every RNG the run uses, in a form ``weights_only`` loading accepts (no numpy arrays)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
