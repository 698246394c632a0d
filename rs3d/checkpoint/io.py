"""Checkpoint files: atomic writes with a checksum beside them, verification, and safe (weights-only) loading
with one-line errors that name the file.

Files may live on any iopath handler (``rs3d.utils.paths``). On local disk a checkpoint appears whole in one
rename and its ``.sha256`` is written after it. Elsewhere the file is serialised in memory, uploaded in one
``copy_from_local`` (``rs3d.utils.atomic``: an object store publishes it only when complete, a handler that
copies into a shared file system may show it growing), and its ``.sha256`` is uploaded only afterwards: a
checkpoint without its marker, or one whose bytes do not match it, is never resumed from.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import pickle
import re
from collections.abc import Sequence
from typing import Any

import torch

from rs3d.checkpoint import kinds
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_open, atomic_write_text
from rs3d.utils.errors import RunStoppedError, UserInputError

CHECKSUM_SUFFIX = ".sha256"


class CheckpointError(UserInputError, RuntimeError):
    """A checkpoint that cannot be used; the message names the file."""


class NotACheckpointError(CheckpointError):
    """A file that is not a checkpoint at all (text, an HTML page, a Git LFS pointer, unknown bytes); ``foreign``
    when a user put it there (:func:`rs3d.checkpoint.kinds.is_foreign`) rather than a disk damaged it."""

    def __init__(self, message: str, foreign: bool = True):
        super().__init__(message)
        self.foreign = foreign


class CheckpointSaveError(RunStoppedError, OSError):
    """Writing a checkpoint failed (full disk, quota, I/O error); the earlier checkpoints are untouched and the
    next run resumes from the newest of them."""


def save_atomic(obj: Any, path: str, checksum: bool = False) -> None:
    """``torch.save`` through a temporary file that is fsynced and renamed (uploaded whole off local disk): a crash
    never leaves half a file.

    The object is serialised in memory first, so a failing write surfaces as a plain ``OSError`` (torch's zip
    writer reports it as an unrelated RuntimeError). With ``checksum``, ``<path>.sha256`` is written after the
    rename: it marks the file complete and lets :func:`verify_checkpoint` detect later damage (truncation, bit
    rot) without unpickling anything.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)  # in memory; the bytes then go through atomic_open (any handler)
    data = buffer.getbuffer()
    with atomic_open(path, "wb") as f:
        f.write(data)
    if checksum:
        digest = hashlib.sha256(data).hexdigest()
        atomic_write_text(path + CHECKSUM_SUFFIX, f"{digest}  {os.path.basename(path)}\n")


def save_or_stop(obj: Any, path: str, checksum: bool = True) -> None:
    """:func:`save_atomic`, turning a failed write (ENOSPC, EDQUOT, EIO...) into :class:`CheckpointSaveError`."""
    try:
        save_atomic(obj, path, checksum)
    except OSError as exc:
        hint = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "check the folder"
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CheckpointSaveError(f"could not write a checkpoint into {paths.parent(path)}: "
                                  f"{reason}; earlier checkpoints are intact, {hint} and rerun to resume") from None


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with paths.open_file(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checkpoint(path: str) -> str | None:
    """None when ``path`` matches its ``.sha256`` (or has none: older files are checked by loading); else why not."""
    marker = path + CHECKSUM_SUFFIX
    if not paths.isfile(marker):
        return None
    try:
        expected = paths.read_text(marker).split()[0]
    except (OSError, IndexError):
        return f"unreadable {os.path.basename(marker)}"
    return None if file_sha256(path) == expected else "checksum mismatch (truncated or damaged)"


def load_checkpoint(path: str, map_location: str | torch.device = "cpu", allowed_globals: Sequence = (),
                    allowed_text: str = "") -> dict:
    """Load with ``weights_only=True``; a file carrying pickled code or objects is refused with a clear error. A
    pretrained folder or ``hf-hub:org/name`` (``rs3d.checkpoint.hub``) loads as the same kind of dict.

    ``allowed_globals`` are extra types the file may hold (``torch.serialization.safe_globals``), described by
    ``allowed_text`` in the refusal message (e.g. "NumPy scalars" for PySlowFast files).
    """
    from rs3d.checkpoint import hub  # a pretrained folder or hub name (safetensors): its own loader

    if hub.is_pretrained_source(path):
        return hub.load_pretrained(path)
    if not paths.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    check_kind(path)
    try:
        with torch.serialization.safe_globals(list(allowed_globals)), paths.open_seekable(path) as f:
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # torch's "Unsupported global: GLOBAL builtins.print ..."
        allowed = f"tensors, plain containers and {allowed_text}" if allowed_text else "tensors and plain containers"
        what = (f"it references {found.group(1)}, which is not among" if found else
                "it holds pickled objects or code beyond")
        raise CheckpointError(f"{path}: refused: {what} {allowed} (loaded with weights_only=True, so nothing in it "
                              "ran)") from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError) as exc:
        text = str(exc).strip().splitlines()
        raise CheckpointError(f"{path}: not a readable checkpoint ({text[0][:160] if text else type(exc).__name__})"
                              ) from None


def check_kind(path: str) -> None:
    """Refuse, naming what it is, a file that cannot be a torch checkpoint (:mod:`rs3d.checkpoint.kinds`). A
    Caffe2 ``.pkl`` may be a text pickle (protocol 0), so for it only web pages and LFS pointers are refused."""
    what = kinds.describe_file(path)
    if path.endswith(".pkl") and not what.startswith(("a Git LFS", "an HTML")):
        return
    if what:
        raise NotACheckpointError(f"{path}: {what}", foreign=kinds.is_foreign(what))
