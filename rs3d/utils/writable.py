"""Checks that an output path can be written, made before a command spends time on its work: a folder that is a
file, a file that is a folder, a parent that is a file, a read-only or full file system, each as one line.

Permissions are tested by writing (a temporary file created and removed in the nearest existing folder), not
with ``os.access``: root passes every access check, and a read-only mount or a full disk only shows on a write.
Nothing is created that stays. Paths of other iopath handlers (``rs3d.utils.paths``) are not probed.
"""
from __future__ import annotations

import os
import tempfile

from rs3d.utils import paths
from rs3d.utils.errors import UserInputError


class NotWritableError(UserInputError):
    """An output path that cannot be written; the message names it and why."""


def _nearest_existing(path: str) -> str:
    """``path`` or its nearest ancestor that exists (a file or a folder)."""
    current = os.path.abspath(path)
    while not os.path.lexists(current) and os.path.dirname(current) != current:
        current = os.path.dirname(current)
    return current


def _probe(folder: str) -> str | None:
    """Why a file cannot be created in ``folder`` (None when it can)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rs3d-write-test-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def check_output_folder(path: str, name: str) -> None:
    """``path`` is, or can become, a folder this process writes into; ``name`` (e.g. "OUTPUT_DIR") is the option
    or key the message names."""
    if not paths.is_local(path):
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotWritableError(f"{path}: {name} is a file, not a folder")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise NotWritableError(f"{path}: {existing} is a file, not a folder (give another {name})")
    reason = _probe(existing)
    if reason:
        raise NotWritableError(f"{path}: cannot write in {name} ({reason})")


def check_output_file(path: str, name: str) -> None:
    """``path`` can be written as a file (it is not a folder, and its folder exists or can be created and takes
    new files); ``name`` is the option the message names (e.g. "--output")."""
    if not paths.is_local(path):
        return
    if os.path.isdir(path):
        raise NotWritableError(f"{path}: {name} is a folder; give a file name")
    existing = _nearest_existing(os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(existing):
        raise NotWritableError(f"{path}: {existing} is a file, not a folder (give another {name})")
    reason = _probe(existing)
    if reason:
        raise NotWritableError(f"{path}: cannot write {name} there ({reason})")
