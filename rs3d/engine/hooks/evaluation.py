"""Hooks that validate during training: precise BN statistics before an evaluation, then single-view validation
of the raw and the EMA model, whose results go to the metrics and into the epoch's summary."""
from __future__ import annotations

import torch

from rs3d.engine.hooks.base import HookBase, is_period
from rs3d.evaluation.evaluator import evaluate
from rs3d.evaluation.progress import EvalProgress
from rs3d.utils.precision import autocast


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
    """Single-view validation of the raw model and of the EMA model every ``period`` epochs and at the end.
    ``results`` holds the last evaluation's numbers (``val_top1``, ``val_ema_top1``...); they go to the metrics
    files and, through ``trainer.add_results``, into the epoch's summary (history, checkpoint, later hooks)."""

    def __init__(self, period: int):
        self.period = period
        self.results: dict[str, float] = {}

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
        self.results = result
        t.add_results(result)
