"""Speed diagnostics: is the run input-bound (``InputBoundHook``), and what did compilation cost
(``CompileTimeHook``, with ``TRAIN.COMPILE``)?

Input-bound: each step's wait for its batch is measured and reported plainly, with what to try.

"GPU utilisation drops to 0% periodically" is the most common complaint about video training: the loader cannot
decode and augment clips as fast as the GPU consumes them. The wait is the time ``next(loader)`` blocks, measured
on the host; the rest of the step (forward, backward, optimizer) is the compute time. With an asynchronous GPU the
host's compute time includes waiting for the GPU at its sync points, so a GPU-bound run shows little data wait.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from rs3d.data.workers import local_processes
from rs3d.engine.hooks.base import HookBase
from rs3d.utils.runtime import available_cores

logger = logging.getLogger("rs3d")


@dataclass
class InputBoundReport:
    """Data wait vs compute over a stretch of steps."""

    steps: int
    wait_s: float
    compute_s: float
    clips_per_step: int

    @property
    def wait_fraction(self) -> float:
        total = self.wait_s + self.compute_s
        return self.wait_s / total if total > 0 else 0.0

    @property
    def loader_clips_per_s(self) -> float:
        """What the loader delivered, at most, while the model waited (clips per second of step time)."""
        return self.clips_per_step * self.steps / max(self.wait_s + self.compute_s, 1e-9)

    @property
    def model_clips_per_s(self) -> float:
        """What the model could consume if batches were always ready."""
        return self.clips_per_step * self.steps / max(self.compute_s, 1e-9)


def advice(report: InputBoundReport, threshold: float, num_workers: int, prefetch: int,
           augment_on_device: bool) -> str:
    """One paragraph: whether the run is input-bound, by how much, and what to try."""
    pct = 100.0 * report.wait_fraction
    if report.wait_fraction < threshold:
        return (f"not input-bound: steps waited for data {pct:.0f}% of the time "
                f"({report.wait_s / max(report.steps, 1) * 1e3:.0f} ms of "
                f"{(report.wait_s + report.compute_s) / max(report.steps, 1) * 1e3:.0f} ms per step)")
    cores, processes = available_cores(), local_processes()
    share = (f"this process's share is {max(1, cores // processes)} of the {cores} usable cores, shared by {processes} "
             "training processes on this machine" if processes > 1 else f"this process may use {cores} cores")
    tries = [f"more loader workers (DATA_LOADER.NUM_WORKERS is {num_workers}; {share})",
             f"a deeper prefetch (DATA_LOADER.PREFETCH_FACTOR is {prefetch})",
             "videos re-encoded for fast decoding (rs3d-prepare-data: short side 256, skippable odd frames)"]
    if not augment_on_device:
        tries.append("augmentation on the GPU (DATA.AUGMENT_ON_DEVICE True)")
    speedup = report.model_clips_per_s / max(report.loader_clips_per_s, 1e-9)
    return (f"INPUT-BOUND: steps waited for data {pct:.0f}% of the time; the loader delivers "
            f"{report.loader_clips_per_s:.1f} clips/s while the model could take {report.model_clips_per_s:.1f} "
            f"(a {speedup:.1f}x faster input would feed it). Try: " + "; ".join(tries) + ".")


class InputBoundHook(HookBase):
    """Measures each step's data wait and compute time; after the first epoch and when training ends, logs
    whether the run is input-bound (wait above ``threshold`` of the step time) and what to try; every epoch's
    ``data_wait_fraction`` goes to the metrics (split "input"). The first ``skip_steps`` steps (loader workers
    starting) are not counted.

    Args:
        clips_per_step: clips one loader batch holds (per process).
        num_workers, prefetch: the loader settings, quoted in the advice.
        augment_on_device: whether augmentation already runs on the device (then it is not suggested).
        threshold: wait fraction above which the run is called input-bound.
        skip_steps: steps at the start of each training session left out of the measurement.
    """

    def __init__(self, clips_per_step: int, num_workers: int, prefetch: int, augment_on_device: bool = False,
                 threshold: float = 0.1, skip_steps: int = 3):
        self.clips_per_step, self.num_workers, self.prefetch = clips_per_step, num_workers, prefetch
        self.augment_on_device, self.threshold, self.skip_steps = augment_on_device, threshold, skip_steps
        self.total = InputBoundReport(0, 0.0, 0.0, clips_per_step)
        self.epoch = InputBoundReport(0, 0.0, 0.0, clips_per_step)
        self._seen = 0
        self._reported_first = False

    def before_epoch(self) -> None:
        self.epoch = InputBoundReport(0, 0.0, 0.0, self.clips_per_step)
        self._last = time.perf_counter()

    def before_step(self) -> None:
        now = time.perf_counter()
        self._wait, self._start = now - self._last, now

    def after_step(self) -> None:
        now = time.perf_counter()
        self._last = now
        self._seen += 1
        if self._seen <= self.skip_steps:
            return
        for report in (self.epoch, self.total):
            report.steps += 1
            report.wait_s += self._wait
            report.compute_s += now - self._start

    def after_epoch(self) -> None:
        monitor = getattr(self.trainer, "monitor", None)
        if monitor is not None:  # a timing, so metrics only: the epoch history stays reproducible
            monitor.scalars(self.trainer.step, {"data_wait_fraction": self.epoch.wait_fraction}, "input")
        if not self._reported_first and self.epoch.steps:
            self._reported_first = True
            logger.info("epoch %d input check: %s", self.trainer.epoch + 1, self.message(self.epoch))

    def after_train(self) -> None:
        if self.total.steps:
            logger.info("input check over the whole run: %s", self.message(self.total))

    def message(self, report: InputBoundReport) -> str:
        return advice(report, self.threshold, self.num_workers, self.prefetch, self.augment_on_device)


class CompileTimeHook(HookBase):
    """Logs how long the first training step took (it compiles the forward and backward graphs) against the
    second, so the cost of ``TRAIN.COMPILE`` is visible in the log."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.times: list[float] = []
        self._start = 0.0

    def before_step(self) -> None:
        if len(self.times) < 2:
            self._start = time.perf_counter()

    def after_step(self) -> None:
        if len(self.times) >= 2:
            return
        self.times.append(time.perf_counter() - self._start)
        if len(self.times) == 2:
            logger.info("TRAIN.COMPILE (%s): the first step took %.1f s including compilation, the second %.2f s",
                        self.scope, *self.times)
