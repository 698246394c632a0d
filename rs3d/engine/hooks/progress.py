"""``ProgressHook``: the progress line and the ``train`` / ``train_epoch`` metrics; it owns the epoch's timing
meters (data wait and step time)."""
from __future__ import annotations

import time

from rs3d.engine.hooks.base import HookBase, is_period
from rs3d.evaluation import SmoothedValue
from rs3d.utils.runtime import memory_mb
from rs3d.utils.timefmt import format_eta


class ProgressHook(HookBase):
    """Every ``period`` loader batches (and at an epoch's last): loss, LR, top-1, data vs step time, clips/s, ETA
    and peak memory, as a line (a live progress line on a terminal) and as ``train`` metrics; at the end of an
    epoch, the epoch's training summary as ``train_epoch`` metrics.

    ``meters`` (``data_time``, ``step_time``: seconds per loader batch) start afresh every epoch."""

    def __init__(self, period: int):
        self.period = period
        self.meters: dict[str, SmoothedValue] = {}
        self.tic = 0.0

    def before_epoch(self) -> None:
        self.meters = {"data_time": SmoothedValue(), "step_time": SmoothedValue()}
        self.tic = time.perf_counter()

    def before_step(self) -> None:
        self.meters["data_time"].update(time.perf_counter() - self.tic)

    def after_step(self) -> None:
        t = self.trainer
        meters = self.meters
        meters["step_time"].update(time.perf_counter() - self.tic)
        self.tic = time.perf_counter()
        i, total = t.iter, t.iters_per_epoch
        if not is_period(i + 1, self.period, i + 1 == total):
            return
        t.check_finite()
        loss, accuracy = t.epoch_means()
        data_time, step_time = meters["data_time"].avg, meters["step_time"].avg
        clips_per_s = t.batch_size * t.dist.world_size / max(step_time, 1e-9)
        remaining = (t.max_epoch - t.epoch - 1) * total + (total - i - 1)
        values = {"loss": loss, "lr": t.optimizer.param_groups[0]["lr"], "top1": 100.0 * accuracy,
                  "data_time": data_time, "step_time": step_time, "clips_per_s": clips_per_s,
                  "memory_mb": memory_mb(t.device)}
        t.monitor.scalars(t.step, {"epoch": t.epoch + 1, "iter": i + 1, **values}, "train")
        t.monitor.line(
            f"epoch {t.epoch + 1}/{t.max_epoch} iter {i + 1}/{total} loss {loss:.4f} lr {values['lr']:.4g} "
            f"top1 {values['top1']:.1f} data {data_time:.3f}s step {step_time:.3f}s {clips_per_s:.1f} clips/s "
            f"ETA {format_eta(remaining * step_time)} mem {values['memory_mb']:.0f}MB", final=i + 1 == total)

    def after_epoch(self) -> None:
        t = self.trainer
        t.monitor.scalars(t.step, {k: v for k, v in t.epoch_summary.items() if not k.startswith("val")},
                          "train_epoch")
