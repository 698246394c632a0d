"""Atomic writes: every file rs3d writes appears whole or not at all, whatever kills the process mid-write.

The one place the write-to-temp-then-rename pattern lives. The temporary file sits beside the target (same file
system, so the rename is atomic), is named ``.<name>.<pid>.<random>.tmp<ext>`` (hidden, never matched by a
``checkpoint_*.pyth`` glob; the target's extension is kept for writers that pick a format from it, as
``torch.export.save`` and PyAV do), is opened with ``open`` rather than ``mkstemp`` so it gets the usual umask
permissions, and is fsynced before the rename. A failed write removes it and leaves the previous target intact.

On a path of another iopath handler (``rs3d.utils.paths``) there is no rename to lean on. The file is written
whole to a local temporary folder first and then handed to ``g_pathmgr.copy_from_local`` in one call: a failed
or killed write never reaches the target, and the target changes only once the whole file exists. Whether
readers can see a partly uploaded file depends on the handler: object stores (S3, GCS) publish an object only
when its upload completes, a handler that copies into a shared file system may show it growing. Writers that
need "complete" to be checkable there write a marker after the file (checkpoints' ``.sha256``). A folder
(``atomic_path`` of a directory) is uploaded file by file, so on such a handler it is not atomic as a whole.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Any

from iopath.common.file_io import g_pathmgr

from rs3d.utils import paths


def temp_path_for(path: str | os.PathLike) -> str:
    """A fresh hidden temporary name beside ``path`` that keeps its extension."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    ext = os.path.splitext(name)[1]
    return os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{ext}")


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (best effort: some file systems refuse to open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: str) -> None:
    if os.path.isfile(path):
        with open(path, "rb") as f:  # our own local temporary file: fsync needs a real descriptor
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = True) -> Iterator[str]:
    """Yield a temporary path for the caller to write (a file or a whole folder); on success it replaces
    ``path`` in one rename, on any error it is removed and ``path`` keeps its previous content."""
    path = os.fspath(path)
    if not paths.is_local(path):
        with _staged_path(path) as tmp:
            yield tmp
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)  # a local path (other handlers took the staged branch above)
    tmp = temp_path_for(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        if os.path.isdir(tmp) and os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(folder)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", fsync: bool = True, **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` that writes through a temporary file; text mode defaults to UTF-8 and ``newline=""``
    (so the csv module controls line endings)."""
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not a write mode")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "")
    with atomic_path(path, fsync=False) as tmp:
        with open(tmp, mode.replace("w", "x"), **kwargs) as handle:  # the local temporary file atomic_path gave
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
    if fsync and paths.is_local(path):
        _fsync_dir(os.path.dirname(os.path.abspath(os.fspath(path))))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a whole text file atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically (the copy gets umask permissions, not the source's); either may be on
    any iopath handler."""
    with atomic_open(dst, "wb") as out, paths.open_file(os.fspath(src), "rb") as inp:
        shutil.copyfileobj(inp, out, 1 << 20)


def upload(local_file: str, path: str) -> None:
    """Copy the local file ``local_file`` to ``path`` on any handler in one ``copy_from_local`` call (see the
    module's note on what that guarantees)."""
    path = paths.checked(path)
    paths.makedirs(paths.parent(path))
    g_pathmgr.copy_from_local(local_file, path, overwrite=True)


def upload_tree(local_dir: str, path: str) -> None:
    """Copy every file under the local folder ``local_dir`` to the same relative place under ``path``, file by
    file in sorted order (not atomic as a whole)."""
    for folder, dirs, files in os.walk(local_dir):
        dirs.sort()
        target = os.path.join(path, os.path.relpath(folder, local_dir)) if folder != local_dir else path
        paths.makedirs(target)
        for name in sorted(files):
            upload(os.path.join(folder, name), os.path.join(target, name))


@contextlib.contextmanager
def _staged_path(path: str) -> Iterator[str]:
    """A local temporary path named like ``path`` (same extension) that is uploaded to it on success."""
    staging = tempfile.mkdtemp(prefix="rs3d-upload-")  # a local temp folder by design: the upload's source
    try:
        tmp = os.path.join(staging, os.path.basename(path.rstrip("/")) or "file")
        yield tmp
        if os.path.isdir(tmp):
            upload_tree(tmp, path)
        elif os.path.exists(tmp):  # the local staging file
            upload(tmp, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
