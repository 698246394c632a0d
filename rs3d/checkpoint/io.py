"""Checkpoint files: atomic writes and safe (weights-only) loading with one-line errors that name the file."""
from __future__ import annotations

import os
import pickle
from typing import Any

import torch

from rs3d.utils.atomic import atomic_open
from rs3d.utils.errors import UserInputError


class CheckpointError(UserInputError, RuntimeError):
    """A checkpoint that cannot be used; the message names the file."""


def save_atomic(obj: Any, path: str) -> None:
    """``torch.save`` through a temporary file that is fsynced and renamed: a crash never leaves half a file."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


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
