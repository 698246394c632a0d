"""A progress line for evaluation loops: validation and the 30-view test can run for hours, and a line with the
batches done, the rate and an ETA every ``period_s`` seconds says they are alive and when they will end."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rs3d.utils.timefmt import format_eta

logger = logging.getLogger("rs3d")


class EvalProgress:
    """Call with ``(batches_done, total_batches, videos_done)`` after every batch; logs at most every
    ``period_s`` seconds and at the last batch.

    Args:
        name: what is being evaluated ("validation", "test on val").
        period_s: seconds between lines.
        log: where lines go (default: the "rs3d" logger at INFO).
    """

    def __init__(self, name: str, period_s: float = 30.0, log: Callable[[str], None] | None = None):
        self.name, self.period_s = name, period_s
        self.log = log or logger.info
        self.start = self.last = time.perf_counter()

    def __call__(self, done: int, total: int, videos: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.period_s and done < total:
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / max(done, 1) * (total - done)
        self.log(f"{self.name}: batch {done}/{total} ({100.0 * done / max(total, 1):.0f}%), "
                 f"{videos / max(elapsed, 1e-9):.1f} videos/s, elapsed {format_eta(elapsed)}, ETA {format_eta(eta)}")
