"""Paths on any storage: every file rs3d reads or writes goes through iopath's ``g_pathmgr``.

A path that a handler registered with ``g_pathmgr`` claims (``s3://...``, ``http://...``, a cluster store, a test's
own prefix) works wherever a local path does: configs, annotation CSVs, class folders, checkpoints, outputs and
videos. Register the handler before calling rs3d (``g_pathmgr.register_handler(...)``).

Local paths take the same calls (``g_pathmgr`` hands them to its native handler); only where a native reader
is much faster by file name (decoders, ``os.walk``) or where POSIX gives a guarantee no handler can (an atomic
rename, an append) do callers branch on :func:`is_local`. iopath's HTTP handler is read-only and cannot tell
whether a URL exists or list a folder: :func:`exists` and :func:`isfile` then answer True and let the open that
follows report a missing file, :func:`isdir` answers False.
"""
from __future__ import annotations

import io
import os
import re
from typing import IO, Any

from iopath.common.file_io import g_pathmgr

from rs3d.utils.errors import UserInputError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class NoHandlerError(UserInputError, OSError):
    """A ``scheme://`` path that no registered handler claims (iopath would treat it as a local file name and
    write ``./s3:/bucket/...``)."""


def is_local(path: str | os.PathLike) -> bool:
    """True for a path of the local file system: not a URI (``scheme://``) and no registered handler claims it."""
    path = os.fspath(path)
    if _URI.match(path):
        return False
    return not _claimed(path)


def checked(path: str | os.PathLike) -> str:
    """``path`` as a string; :class:`NoHandlerError` for a ``scheme://`` path that no registered handler claims."""
    path = os.fspath(path)
    match = _URI.match(path)
    if match and not _claimed(path):
        raise NoHandlerError(f"{path}: no iopath handler is registered for {match.group(0)} (register one with "
                             "iopath's g_pathmgr.register_handler before calling rs3d)")
    return path


def _claimed(path: str) -> bool:
    return any(path.startswith(prefix) for prefix in getattr(g_pathmgr, "_path_handlers", {}))


def absolute(path: str | os.PathLike) -> str:
    """``os.path.abspath`` for a local path; any other path is returned as it is (abspath would turn
    ``s3://bucket/x`` into ``<cwd>/s3:/bucket/x``)."""
    path = os.fspath(path)
    return os.path.abspath(path) if is_local(path) else path


def parent(path: str | os.PathLike) -> str:
    """The folder holding ``path`` (absolute when local)."""
    return os.path.dirname(absolute(path))


def relative(path: str, start: str) -> str:
    """``path`` relative to the folder ``start`` (``os.path.relpath`` for local paths; for others the part after
    ``start/``, or ``path`` itself when it is not under ``start``)."""
    if is_local(path) and is_local(start):
        return os.path.relpath(path, start)
    prefix = start.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def exists(path: str) -> bool:
    """Whether something is at ``path`` (True where the handler cannot tell, e.g. a URL)."""
    try:
        return g_pathmgr.exists(checked(path))
    except NotImplementedError:
        return True


def isfile(path: str) -> bool:
    """Whether ``path`` is a file (True where the handler cannot tell, e.g. a URL)."""
    try:
        return g_pathmgr.isfile(checked(path))
    except NotImplementedError:
        return True


def isdir(path: str) -> bool:
    """Whether ``path`` is a folder (False where the handler cannot tell, e.g. a URL)."""
    try:
        return g_pathmgr.isdir(checked(path))
    except NotImplementedError:
        return False


def ls(path: str) -> list[str]:
    """Sorted names (not paths) of the entries directly in the folder ``path``. Off local disk the folder is asked
    for as ``path/`` (object stores list the keys under that prefix, folders as ``name/``)."""
    folder = checked(path) if is_local(path) else checked(path).rstrip("/") + "/"
    names = {os.path.basename(entry.rstrip("/")) for entry in g_pathmgr.ls(folder)}
    return sorted(name for name in names if name)


def makedirs(path: str) -> None:
    """Create the folder ``path`` and its parents if missing (a no-op on stores without folders)."""
    try:
        g_pathmgr.mkdirs(checked(path))
    except NotImplementedError:
        pass


def remove(path: str) -> None:
    """Delete the file ``path``."""
    g_pathmgr.rm(checked(path))


def move(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``: one atomic ``os.replace`` on local disk; elsewhere the handler's move, or a
    copy then a delete where it has none (not atomic there)."""
    if is_local(src) and is_local(dst):
        os.replace(src, dst)
        return
    try:
        g_pathmgr.mv(checked(src), checked(dst))
    except NotImplementedError:
        g_pathmgr.copy(src, dst, overwrite=True)
        g_pathmgr.rm(src)


def open_file(path: str, mode: str = "r", encoding: str = "utf-8", newline: str | None = None) -> IO:
    """``open`` through ``g_pathmgr``. Text is decoded here (UTF-8 by default) from the handler's binary file,
    since handlers differ in the arguments they take (iopath's HTTP one takes none). For writing whole files
    prefer :func:`rs3d.utils.atomic.atomic_open`, which never leaves half a file."""
    if "b" in mode:
        return g_pathmgr.open(checked(path), mode)
    return io.TextIOWrapper(g_pathmgr.open(checked(path), mode + "b"), encoding=encoding, newline=newline)


def read_text(path: str) -> str:
    with open_file(path) as f:
        return f.read()


def open_seekable(path: str) -> IO[bytes]:
    """A seekable binary file object for ``path``, for readers that take one (PyAV, decord, ``torch.load``): the
    handler's own when it can seek, else the whole file read into memory."""
    f = g_pathmgr.open(checked(path), "rb")
    if f.seekable():
        return f
    with f:
        return io.BytesIO(f.read())


def reader_source(path: str) -> str | IO[bytes]:
    """What to hand a native reader that takes a file name or a file object (PyAV's ``av.open``, decord's
    ``VideoReader``): a local path itself (the reader's own fast file access), else :func:`open_seekable`; the
    caller closes what it got when it is not a ``str``."""
    return path if is_local(path) else open_seekable(path)


def local_copy(path: str) -> str:
    """A local file holding ``path``'s bytes, for readers that only take a file name (timm's weights file):
    the path itself when local, else the handler's cached download."""
    return path if is_local(path) else g_pathmgr.get_local_path(checked(path))


def registered_handlers() -> list:
    """The handlers registered with ``g_pathmgr`` in this process (each once), e.g. to register them again in
    worker processes that do not inherit them (forkserver, spawn); see :func:`register_handlers`."""
    unique: dict[int, Any] = {}
    for handler in getattr(g_pathmgr, "_path_handlers", {}).values():
        unique.setdefault(id(handler), handler)
    return list(unique.values())


def register_handlers(handlers: list) -> None:
    """Register ``handlers`` with this process's ``g_pathmgr``, skipping those whose prefixes are already taken."""
    taken = getattr(g_pathmgr, "_path_handlers", {})
    for handler in handlers:
        if not any(prefix in taken for prefix in handler._get_supported_prefixes()):
            g_pathmgr.register_handler(handler)
