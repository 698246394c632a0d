"""Watching a run: log lines (or a progress line on a terminal), metrics.jsonl and TensorBoard; rank 0 only."""
from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from typing import TextIO

logger = logging.getLogger("rs3d")


def setup_logging(output_dir: str, is_main: bool) -> None:
    """Log to stderr and OUTPUT_DIR/log.txt on rank 0; other ranks only warn."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    fmt = logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if is_main:
        os.makedirs(output_dir, exist_ok=True)
        file = logging.FileHandler(os.path.join(output_dir, "log.txt"))
        file.setFormatter(fmt)
        root.addHandler(file)


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
            os.makedirs(output_dir, exist_ok=True)
        self._jsonl = open(os.path.join(output_dir, "metrics.jsonl"), "a") if enabled else None
        self._tb = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(os.path.join(output_dir, "tensorboard"))

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

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
