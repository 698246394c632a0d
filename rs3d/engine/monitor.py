"""Watching a run: log lines (or a progress line on a terminal), metrics.jsonl and TensorBoard; rank 0 only.

OUTPUT_DIR may be on any iopath handler: log.txt and metrics.jsonl go through ``rs3d.utils.appending`` (uploaded
whole every 30 s and at the end there), TensorBoard's event files are written to a local folder and uploaded
when the monitor closes (TensorBoard's writer does its own file access and cannot use ``g_pathmgr``).
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import TextIO

from rs3d.evaluation.reports import read_metrics
from rs3d.utils import paths
from rs3d.utils.appending import SyncedAppendFile, open_append
from rs3d.utils.atomic import upload_tree

logger = logging.getLogger("rs3d")


class LogFileHandler(logging.StreamHandler):
    """Log records to ``log.txt`` on any handler (``rs3d.utils.appending.open_append``); closing it closes the
    file (uploading it, off local disk)."""

    def __init__(self, path: str):
        super().__init__(open_append(path))
        self.path = path

    def sync(self) -> None:
        """Upload now (off local disk; a flush on local disk)."""
        with self.lock:
            self.stream.flush()
            if isinstance(self.stream, SyncedAppendFile):
                self.stream.sync()

    def close(self) -> None:
        with self.lock:
            if not self.stream.closed:
                self.stream.close()
        super().close()


class StderrHandler(logging.StreamHandler):
    """Logs to whatever ``sys.stderr`` is at each record: a command called in-process by a test (or a notebook that
    swaps streams) must not keep writing to a stream that has since been closed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # logging.StreamHandler assigns it; the current sys.stderr is used instead
        pass


def setup_logging(output_dir: str, is_main: bool) -> None:
    """Log to stderr and OUTPUT_DIR/log.txt on rank 0; other ranks only warn."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, LogFileHandler):  # an earlier command's log.txt in this process
            handler.close()
    root.handlers.clear()
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    fmt = logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S")
    stream = StderrHandler()
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if is_main:
        paths.makedirs(output_dir)
        file = LogFileHandler(os.path.join(output_dir, "log.txt"))
        file.setFormatter(fmt)
        root.addHandler(file)


def sync_log_files() -> None:
    """Bring every log.txt up to date on its storage (the end of a command; uploads off local disk)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogFileHandler):
            handler.sync()


def terminal_width(stream: TextIO, fallback: int = 100) -> int:
    """Columns of the terminal ``stream`` writes to; ``fallback`` when it is not one (a pipe, a file, no fd)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or fallback
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return fallback


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced by an object without isatty
        return False


class Monitor:
    """Receives scalars and writes them to the log, metrics.jsonl and TensorBoard (no-ops off rank 0).

    In-epoch lines become a live progress line only when stderr, where they go, is a terminal, sized from that
    terminal; piped or redirected (``| tee``, a batch system's log), every line is a plain log line.
    """

    def __init__(self, output_dir: str, enabled: bool, tensorboard: bool = True, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream
        if enabled:
            paths.makedirs(output_dir)
        metrics = os.path.join(output_dir, "metrics.jsonl")
        #: Every record of the run so far (a resumed run's earlier ones too), for pictures of the run.
        self.records: list[dict] = read_metrics(metrics) if enabled and paths.isfile(metrics) else []
        self._jsonl = open_append(metrics) if enabled else None
        self._tb = None
        self._tb_target, self._tb_local = os.path.join(output_dir, "tensorboard"), None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            if not paths.is_local(self._tb_target):  # TensorBoard writes by itself: a local folder, uploaded at close
                self._tb_local = tempfile.mkdtemp(prefix="rs3d-tensorboard-")
            self._tb = SummaryWriter(self._tb_local or self._tb_target)

    @property
    def tty(self) -> bool:
        return self.enabled and is_terminal(self.out)

    @property
    def out(self) -> TextIO:
        return self.stream or sys.stderr  # looked up late: tests and wrappers replace sys.stderr

    def scalars(self, step: int, values: dict, prefix: str) -> None:
        """Record ``values`` at global ``step`` under ``prefix`` ("train", "val", "test")."""
        if not self.enabled:
            return
        record = {"step": step, "split": prefix, "time": time.time(), **values}
        self.records.append(record)
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(f"{prefix}/{key}", value, step)

    def line(self, text: str, final: bool = True) -> None:
        """A log line; on a terminal, in-epoch lines overwrite each other like a progress bar."""
        if not self.enabled:
            return
        tty, out = self.tty, self.out
        if tty and not final:
            out.write("\r" + text[: terminal_width(out) - 1].ljust(40))
            out.flush()
        else:
            if tty:
                out.write("\r")
            logger.info(text)

    def sync(self) -> None:
        """Bring metrics.jsonl, TensorBoard and log.txt up to date on their storage, keeping them open (the end of
        a training loop, however it ended)."""
        if self._jsonl is not None:
            self._jsonl.flush()
            if isinstance(self._jsonl, SyncedAppendFile):
                self._jsonl.sync()
        if self._tb is not None:
            self._tb.flush()
        if self.enabled:
            sync_log_files()

    def close(self) -> None:
        """Close metrics.jsonl and TensorBoard and bring log.txt up to date (uploading them off local disk)."""
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
            if self._tb_local:
                upload_tree(self._tb_local, self._tb_target)
                shutil.rmtree(self._tb_local, ignore_errors=True)
        if self.enabled:
            sync_log_files()
