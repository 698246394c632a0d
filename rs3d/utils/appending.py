"""Files that grow line by line (``log.txt``, ``metrics.jsonl``, ``crashed_videos.txt``) on any iopath handler.

A local file is opened in append mode, as always: each flushed line is on disk at once and concurrent writers
(ranks) each land whole lines. Object stores and most other handlers cannot append, so there the file is a
local copy, seeded with what the target already holds (a resumed run continues it), and uploaded whole
(``rs3d.utils.atomic.upload``) at most every ``sync_seconds``, on :meth:`SyncedAppendFile.sync` and on close:
a killed process loses at most the last ``sync_seconds`` of lines, and the target always holds a complete
earlier version. Two processes appending to one such file concurrently would overwrite each other's uploads.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import IO

from rs3d.utils import paths
from rs3d.utils.atomic import atomic_write_text, upload

SYNC_SECONDS = 30.0


class SyncedAppendFile:
    """A text file opened for appending whose target is on a handler that cannot append (see the module)."""

    def __init__(self, path: str, sync_seconds: float = SYNC_SECONDS):
        self.path, self.sync_seconds = path, sync_seconds
        self._folder = tempfile.mkdtemp(prefix="rs3d-append-")  # the local copy: handlers cannot append
        self._local = os.path.join(self._folder, os.path.basename(path) or "file")
        with open(self._local, "wb") as copy:  # local copy, seeded from the target
            if paths.exists(path) and paths.isfile(path):
                with paths.open_file(path, "rb") as existing:
                    shutil.copyfileobj(existing, copy)
        self._file = open(self._local, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._last_sync = time.monotonic()
        self.closed = False

    def write(self, text: str) -> int:
        return self._file.write(text)

    def flush(self) -> None:
        """Flush the local copy; upload it when ``sync_seconds`` have passed since the last upload."""
        self._file.flush()
        if time.monotonic() - self._last_sync >= self.sync_seconds:
            self.sync()

    def sync(self) -> None:
        """Upload the whole file now."""
        self._file.flush()
        upload(self._local, self.path)
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.sync()
        finally:
            self._file.close()
            shutil.rmtree(self._folder, ignore_errors=True)
            self.closed = True

    def __enter__(self) -> SyncedAppendFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_append(path: str, sync_seconds: float = SYNC_SECONDS) -> IO[str] | SyncedAppendFile:
    """``open(path, "a")`` on local disk (its folder created), a :class:`SyncedAppendFile` on other handlers."""
    if paths.is_local(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)  # a local path
        return open(path, "a", encoding="utf-8")  # noqa: SIM115 - local append: POSIX O_APPEND, whole lines
    paths.makedirs(paths.parent(path))
    return SyncedAppendFile(path, sync_seconds)


def append_text(path: str, text: str) -> None:
    """Add ``text`` at the end of ``path``: one O_APPEND write locally; elsewhere the file is read and written
    back whole (atomically, but a concurrent appender's line can be lost)."""
    if paths.is_local(path):
        with open_append(path) as f:
            f.write(text)
        return
    old = paths.read_text(path) if paths.exists(path) and paths.isfile(path) else ""
    atomic_write_text(path, old + text)
