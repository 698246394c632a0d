"""Training hooks: the pieces of a run that happen around the optimisation loop (EMA, precise BN, validation,
checkpoints, the progress line, metric files). The loop in :mod:`rs3d.engine.trainer` only calls them, so adding
a profiler, another logger or a preemption handler is a new hook, not an edit of the loop.

Each hook receives plain arguments when built (``Trainer.build_hooks`` translates the config) and reaches the run
through ``self.trainer``, set by :meth:`TrainerBase.register_hooks`.
"""
from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import torch

from rs3d.checkpoint.io import save_or_stop
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.evaluation.evaluator import evaluate
from rs3d.evaluation.progress import EvalProgress
from rs3d.utils.precision import autocast
from rs3d.utils.runtime import memory_mb
from rs3d.utils.timefmt import format_eta

if TYPE_CHECKING:
    from rs3d.engine.trainer import Trainer

logger = logging.getLogger("rs3d")


class HookBase:
    """Override the moments you need; every method is a no-op by default.

    Order within one moment is the order of registration. ``after_step`` runs after every loader batch
    (micro-batch); ``trainer.stepped`` says whether that batch ended with an optimizer step.
    """

    trainer: Trainer

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass


def is_period(count: int, period: int, last: bool = False) -> bool:
    """True every ``period`` counts (1-based) and at the last one."""
    return last or (period > 0 and count % period == 0)


class EMAHook(HookBase):
    """Blend the weights into the EMA after every optimizer step."""

    def after_step(self) -> None:
        if self.trainer.stepped and self.trainer.ema is not None:
            self.trainer.ema.update(self.trainer.model)


class PreciseBNHook(HookBase):
    """Recompute BN statistics over ``num_batches`` training batches before each evaluation (fvcore's
    ``update_bn_stats``), so validation sees population statistics rather than the last batches' running mean."""

    def __init__(self, num_batches: int, eval_period: int):
        self.num_batches, self.eval_period = num_batches, eval_period

    def after_epoch(self) -> None:
        t = self.trainer
        if is_period(t.epoch + 1, self.eval_period, t.is_last_epoch):
            self.update_bn_stats()

    def update_bn_stats(self) -> None:
        """Replace the model's BN running statistics by their average over ``num_batches`` training batches."""
        from fvcore.nn.precise_bn import update_bn_stats

        t = self.trainer

        def inputs():
            for batch in t.train_loader:
                yield t.train_inputs(batch)

        with torch.no_grad(), autocast(t.device, t.amp_dtype):
            # fvcore asserts when the loader ends first: a small split gives what it has (one pass).
            update_bn_stats(t.model, inputs(), min(self.num_batches, len(t.train_loader)))


class EvalHook(HookBase):
    """Single-view validation of the raw model and of the EMA model every ``period`` epochs and at the end;
    results go into the epoch summary (``val_top1``, ``val_ema_top1``...) and the metrics files."""

    def __init__(self, period: int):
        self.period = period

    def after_epoch(self) -> None:
        t = self.trainer
        if not is_period(t.epoch + 1, self.period, t.is_last_epoch):
            return
        result = {}
        models = [("val", t.model)] + ([("val_ema", t.ema.module)] if t.ema else [])
        for name, model in models:
            progress = EvalProgress(f"epoch {t.epoch + 1} {name}") if t.dist.is_main else None
            summary = evaluate(model, t.val_loader, t.normalizer, t.amp_dtype, skips=t.skips,
                               progress=progress).summary()
            result.update({f"{name}_{k}": v for k, v in summary.items() if k != "num_videos"})
            t.monitor.scalars(t.step, summary, name)
        text = " ".join(f"{k} {v:.2f}" for k, v in result.items() if "top" in k or "loss" in k)
        t.monitor.line(f"epoch {t.epoch + 1} validation: {text}")
        t.epoch_summary.update(result)


class CheckpointHook(HookBase):
    """Epoch checkpoints every ``period`` epochs and at the end, mid-epoch ones every ``period_iters`` iterations
    (at the optimizer step that ends that iteration's accumulation group), the last ``keep_last`` kept, plus the
    best by validation top-1 (EMA preferred), and ``model_final.pyth`` with the exported weights when training
    ends (only when it ran to its end). Only the main process writes; the trainer refuses to write any state that
    holds a NaN or Inf (``Trainer.save_checkpoint``, ``Trainer.export_state``)."""

    def __init__(self, manager: CheckpointManager, period: int, final_path: str, period_iters: int = 0):
        self.manager, self.period, self.final_path, self.period_iters = manager, period, final_path, period_iters
        self.pending = False

    def after_step(self) -> None:
        t = self.trainer
        if self.period_iters > 0 and (t.iter + 1) % self.period_iters == 0:
            self.pending = True
        if self.pending and t.stepped and t.iter + 1 < t.iters_per_epoch:  # the epoch's end has its own
            self.pending = False
            t.save_checkpoint(iteration=t.iter + 1)

    def after_epoch(self) -> None:
        t = self.trainer
        self.pending = False
        summary = t.epoch_summary
        score = summary.get("val_ema_top1", summary.get("val_top1", -math.inf))
        is_best = score > t.best
        t.best = max(t.best, score)
        if is_period(t.epoch + 1, self.period, t.is_last_epoch):
            t.save_checkpoint(is_best=is_best)

    def after_train(self) -> None:
        t = self.trainer
        if t.completed and t.dist.is_main:  # not after a stop or an error: the run has no final model yet
            save_or_stop(t.export_state(), self.final_path, checksum=False)


class ProgressHook(HookBase):
    """Every ``period`` loader batches (and at an epoch's last): loss, LR, top-1, data vs step time, clips/s, ETA
    and peak memory, as a line (a live progress line on a terminal) and as ``train`` metrics; at the end of an
    epoch, the epoch's mean loss and top-1 as ``train_epoch`` metrics."""

    def __init__(self, period: int):
        self.period = period

    def before_epoch(self) -> None:
        self.tic = time.perf_counter()

    def before_step(self) -> None:
        self.trainer.meters["data_time"].update(time.perf_counter() - self.tic)

    def after_step(self) -> None:
        t = self.trainer
        meters = t.meters
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


class RankSeedHook(HookBase):
    """Different dropout and stochastic-depth masks on every rank, reproducibly.

    Every rank is seeded alike so that models start identical; left so, each rank would also draw the same
    masks on its own part of the batch. Before every step, each rank other than 0 reseeds torch from
    (seed, rank, epoch, iteration): its masks differ from every other rank's, and a run resumed mid-way (or
    restarted by torchrun) draws exactly the masks an uninterrupted run draws. Rank 0 keeps its own stream, which
    the checkpoint stores and resume restores.

    Args:
        seed: the run's seed (SEED).
        rank: this process's global rank.
    """

    def __init__(self, seed: int, rank: int):
        self.seed, self.rank = seed, rank

    def before_step(self) -> None:
        if self.rank > 0:
            t = self.trainer
            torch.manual_seed(hash((self.seed, self.rank, t.epoch, t.iter)) % (2**63))
