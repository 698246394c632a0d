"""``CheckpointHook``: when checkpoints are written (epochs, mid-epoch iterations, the best, the final model); it
keeps the best validation score itself and carries it across a resume in its own state."""
from __future__ import annotations

import math
from typing import Any

from rs3d.checkpoint.io import save_or_stop
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.engine.hooks.base import HookBase, is_period


def validation_score(summary: dict) -> float:
    """The score that picks the best checkpoint: validation top-1 of the EMA model, else of the raw model
    (-inf for an epoch without validation)."""
    return summary.get("val_ema_top1", summary.get("val_top1", -math.inf))


class CheckpointHook(HookBase):
    """Epoch checkpoints every ``period`` epochs and at the end, mid-epoch ones every ``period_iters`` iterations
    (at the optimizer step that ends that iteration's accumulation group), the last ``keep_last`` kept, plus the
    best by validation top-1 (EMA preferred), and ``model_final.pyth`` with the exported weights when training
    ends (only when it ran to its end). Only the main process writes; the trainer refuses to write any state that
    holds a NaN or Inf (``Trainer.save_checkpoint``, ``Trainer.export_state``).

    ``best`` is the best score so far; it survives a resume through :meth:`state_dict` (older checkpoints kept it
    at their top level, ``Trainer.resume`` maps it here)."""

    def __init__(self, manager: CheckpointManager, period: int, final_path: str, period_iters: int = 0):
        self.manager, self.period, self.final_path, self.period_iters = manager, period, final_path, period_iters
        self.pending = False
        self.best = -math.inf

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])

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
        score = validation_score(t.epoch_summary)
        is_best = score > self.best
        self.best = max(self.best, score)
        if is_period(t.epoch + 1, self.period, t.is_last_epoch):
            t.save_checkpoint(is_best=is_best)
        elif is_best:  # a new best between checkpoint epochs is still kept, as checkpoint_best.pyth alone
            t.save_checkpoint(best_only=True)

    def after_train(self) -> None:
        t = self.trainer
        if t.completed and t.dist.is_main:  # not after a stop or an error: the run has no final model yet
            save_or_stop(t.export_state(), self.final_path, checksum=False)
