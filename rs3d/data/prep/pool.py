"""A crash-proof process pool for the data tools: ``run_in_pool(fn, items)`` is ``[fn(item) for item in items]`` in
worker processes, where a worker that dies (a decoder segfault on a damaged file) costs one item, not the run.

After a crash the pool is restarted, and the items that were in flight are re-run one at a time, so a second crash
names its culprit. Workers start from a forkserver that has imported the data tools once (restarts take
milliseconds), receive the parent's iopath handlers and user modules (``CUSTOM_IMPORTS``), and silence the decoders' native logging.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TextIO

from rs3d.data.decoders import quiet_backends
from rs3d.data.decoders.base import first_line
from rs3d.utils import paths
from rs3d.utils.imports import import_modules, imported_modules

CRASHED = "worker process died while reading it (a decoder crash)"
#: Modules the forkserver imports once, so every (re)started worker has them.
PRELOAD = ["rs3d.data.prep.checks", "rs3d.data.prep.reencode", "rs3d.data.prep.toy"]


def run_in_pool(fn: Callable[[Any], Any], items: Sequence[Any], workers: int | None = None,
                on_failure: Callable[[Any, str], Any] | None = None,
                progress: Callable[[int, int, Any], None] | None = None) -> list[Any]:
    """``[fn(item) for item in items]`` in worker processes; an item whose worker dies or raises gets
    ``on_failure(item, reason)`` instead, and the pool is restarted so the other items still run."""
    on_failure = on_failure or (lambda item, reason: None)
    results: list[Any] = [None] * len(items)
    count = 0

    def finish(index: int, value: Any) -> None:
        nonlocal count
        results[index], count = value, count + 1
        if progress:
            progress(count, len(items), value)

    queue, workers = deque(range(len(items))), max(1, workers or os.cpu_count() or 1)
    while queue:
        suspects = deque(_drain(fn, items, queue, workers, 2 * workers, finish, on_failure))
        while suspects:  # one worker, one item in flight: a second crash names its video
            for index in _drain(fn, items, suspects, 1, 1, finish, on_failure):
                finish(index, on_failure(items[index], CRASHED))
    return results


def pool_context() -> multiprocessing.context.BaseContext:
    """forkserver (spawn where missing): workers never inherit decoder state from the parent, and the
    server imports rs3d.data once, so workers restarted after a crash start in milliseconds."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def init_worker(handlers: Sequence = (), modules: Sequence[tuple[str, str]] = ()) -> None:
    """Pool worker start: the parent's iopath handlers and CUSTOM_IMPORTS modules (a forkserver worker inherits
    neither; ``modules`` from :func:`rs3d.utils.imports.imported_modules`), quiet decoders."""
    paths.register_handlers(list(handlers))
    for entry, folder in modules:
        import_modules([entry], folder)
    quiet_decoders()


def _shareable_handlers() -> list:
    """The parent's iopath handlers that can be sent to a worker (pickled)."""
    shareable = []
    for handler in paths.registered_handlers():
        try:
            pickle.dumps(handler)
        except Exception:  # noqa: BLE001 - locks, sockets...: the worker then lacks that handler
            continue
        shareable.append(handler)
    return shareable


def quiet_decoders() -> None:
    """Silence every decoding backend's native logging: every problem is reported in the results."""
    quiet_backends()


def progress_printer(label: str, interval: float = 10.0, stream: TextIO | None = None
                     ) -> Callable[[int, int, Any], None]:
    """A ``progress`` callback that prints ``label: done/total (rate, eta)`` every ``interval`` s and at the end."""
    start = last = time.monotonic()

    def report(done: int, total: int, _result: Any) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= interval:
            last, rate = now, done / max(now - start, 1e-9)
            print(f"{label}: {done}/{total} ({rate:.1f}/s, {(total - done) / rate:.0f} s left)",
                  file=stream or sys.stderr, flush=True)
    return report


def _drain(fn, items, queue: deque, workers: int, in_flight_max: int, finish, on_failure) -> list[int]:
    """Run queued items in a fresh pool; if the pool breaks, return the indices that were in flight."""
    in_flight: dict = {}
    with ProcessPoolExecutor(workers, mp_context=pool_context(), initializer=init_worker,
                             initargs=(_shareable_handlers(), imported_modules())) as pool:
        while queue or in_flight:
            while queue and len(in_flight) < in_flight_max:
                index = queue.popleft()
                in_flight[pool.submit(fn, items[index])] = index
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = []
            for future in done:
                index = in_flight.pop(future)
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    broken.append(index)
                elif error is not None:
                    finish(index, on_failure(items[index], f"{type(error).__name__}: {first_line(error)}"))
                else:
                    finish(index, future.result())
            if broken:  # every other future fails too; keep results that made it out before the crash
                wait(in_flight)
                for future, index in in_flight.items():
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        broken.append(index)
                    else:
                        finish(index, future.result() if error is None else on_failure(items[index], repr(error)))
                return broken
    return []
