"""Watching a run: log lines (or a progress line on a terminal), metrics.jsonl and scalar writers (TensorBoard, and
the experiment trackers of ``rs3d.engine.hooks.trackers``); rank 0 only.

Every scalar goes through :meth:`Monitor.scalars`: one record in metrics.jsonl, and the same numbers, tagged
``split/key`` by :func:`tagged_scalars`, to every writer, so TensorBoard and a tracker always show the same values.

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
from typing import Protocol, TextIO

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


class ScalarWriter(Protocol):
    """Where the monitor sends scalars besides metrics.jsonl: ``write`` gets ``{"split/key": value}`` at a step."""

    def write(self, step: int, scalars: dict[str, float]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def tagged_scalars(values: dict, prefix: str) -> dict[str, float]:
    """The numbers of one record, tagged ``prefix/key``: what every writer receives (strings and lists stay in
    metrics.jsonl only)."""
    return {f"{prefix}/{key}": value for key, value in values.items() if isinstance(value, (int, float))}


class TensorBoardWriter:
    """TensorBoard event files in ``target``; off local disk they are written to a local folder and uploaded at
    close."""

    def __init__(self, target: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.target = target
        self.local = None if paths.is_local(target) else tempfile.mkdtemp(prefix="rs3d-tensorboard-")
        self.writer = SummaryWriter(self.local or target)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
        if self.local:
            upload_tree(self.local, self.target)
            shutil.rmtree(self.local, ignore_errors=True)


class Monitor:
    """Receives scalars and writes them to the log, metrics.jsonl and the writers (no-ops off rank 0).

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
        #: Where scalars go besides metrics.jsonl: TensorBoard (unless ``tensorboard`` is False), then trackers.
        self.writers: list[ScalarWriter] = []
        if enabled and tensorboard:
            self.writers.append(TensorBoardWriter(os.path.join(output_dir, "tensorboard")))

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
        if self.writers:
            tagged = tagged_scalars(values, prefix)
            for writer in self.writers:
                writer.write(step, tagged)

    def add_writer(self, writer: ScalarWriter) -> None:
        """Send every later scalar to ``writer`` too (an experiment tracker); nothing off rank 0."""
        if self.enabled:
            self.writers.append(writer)

    def remove_writer(self, writer: ScalarWriter) -> None:
        """Stop sending scalars to ``writer`` (its owner closes it)."""
        if writer in self.writers:
            self.writers.remove(writer)

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
        for writer in self.writers:
            writer.flush()
        if self.enabled:
            sync_log_files()

    def close(self) -> None:
        """Close metrics.jsonl and the writers and bring log.txt up to date (uploading them off local disk)."""
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        writers, self.writers = self.writers, []
        for writer in writers:
            writer.close()
        if self.enabled:
            sync_log_files()
