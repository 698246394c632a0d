"""One run per output folder: ``OUTPUT_DIR/run.lock`` names the process that trains there (host, PID, start) and is
refreshed while it lives, so a second ``rs3d-train`` on the same folder refuses instead of resuming the first one's
checkpoint and writing the same files (issue 25: both did, and the final config named the wrong learning rate).

A lock whose process is gone (same host, PID not running) or that was not refreshed for :data:`STALE_AFTER_S`
(another host that died, a shared file system) is taken over with a warning. The lock file is created with
``O_EXCL`` on local disk, so two runs starting at the same moment cannot both win; on other iopath handlers, which
have no exclusive create, it is written and read back.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from rs3d.utils import paths
from rs3d.utils.atomic import atomic_write_text
from rs3d.utils.errors import UserInputError

logger = logging.getLogger("rs3d")

LOCK_NAME = "run.lock"
#: Seconds between refreshes of a live lock.
REFRESH_S = 60.0
#: A lock not refreshed for this long belongs to a run that is gone (a crashed host).
STALE_AFTER_S = 10 * 60.0


class RunLockedError(UserInputError):
    """Another live run holds the output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


#: The locks this process holds (a PID in a lock is this process's own only if one of these is on that folder).
_HELD: list[RunLock] = []


class RunLock:
    """The lock of ``output_dir`` for this process: :meth:`acquire`, then :meth:`release` (also a context manager)."""

    def __init__(self, output_dir: str, refresh_s: float = REFRESH_S, stale_after_s: float = STALE_AFTER_S):
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.refresh_s, self.stale_after_s = refresh_s, stale_after_s
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict | None:
        """The lock's content, or None when there is no (readable) lock."""
        try:
            return json.loads(paths.read_text(self.path))
        except (OSError, ValueError):
            return None

    def stale(self, holder: dict) -> str | None:
        """Why ``holder`` is no longer running (None if it may be)."""
        age = time.time() - float(holder.get("refreshed", holder.get("started", 0)))
        if holder.get("host") == self.me["host"]:
            pid = int(holder.get("pid", -1))
            if pid == self.me["pid"] and not any(lock.path == self.path for lock in _HELD if lock is not self):
                # this process does not hold it, so the PID was reused (a container restarted in a fresh PID
                # namespace after a kill left the lock behind): the run that wrote it is gone
                return f"it names this process's PID {pid} (a restart reusing the PID of a run that is gone)"
            if not _pid_alive(pid):
                return f"its process {holder.get('pid')} is not running"
        if age > self.stale_after_s:
            return f"it was last refreshed {age / 60:.0f} minutes ago"
        return None

    def _write_new(self) -> bool:
        text = json.dumps({**self.me, "refreshed": time.time()})
        if not paths.is_local(self.path):
            atomic_write_text(self.path, text)
            return (self.holder() or {}).get("pid") == self.me["pid"]
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)  # the lock itself: local disk
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return True

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; a :class:`RunLockedError` naming the holder otherwise."""
        paths.makedirs(os.path.dirname(self.path) or ".")
        for _ in range(3):
            if self._write_new():
                self._start_refreshing()
                _HELD.append(self)
                return
            holder = self.holder()
            if holder is None:  # removed, or being written, meanwhile: try again
                time.sleep(0.2)
                continue
            reason = self.stale(holder)
            if reason is None:
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("started", 0))))
                raise RunLockedError(f"{os.path.dirname(self.path)} is in use by another run (host "
                                     f"{holder.get('host')}, PID {holder.get('pid')}, since {since}); wait for it, "
                                     f"stop it, or give another OUTPUT_DIR")
            logger.warning("%s: taking over the lock of a run that is gone (%s)", self.path, reason)
            paths.remove(self.path)
        raise RunLockedError(f"{self.path}: could not take the lock (other runs are starting on this folder)")

    def _start_refreshing(self) -> None:
        def refresh() -> None:
            while not self._stop.wait(self.refresh_s):
                try:
                    atomic_write_text(self.path, json.dumps({**self.me, "refreshed": time.time()}))
                except OSError as e:  # a full disk must not kill the run; the lock just ages
                    logger.warning("%s: not refreshed (%s)", self.path, e)

        self._thread = threading.Thread(target=refresh, name="rs3d-run-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop refreshing and remove the lock if it is still this process's."""
        if self in _HELD:
            _HELD.remove(self)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        holder = self.holder()
        if holder and holder.get("pid") == self.me["pid"] and holder.get("host") == self.me["host"]:
            paths.remove(self.path)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
