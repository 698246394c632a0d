"""``CurvesHook``: redraws ``OUTPUT_DIR/curves.png`` (loss, top-1 of the raw and EMA models, learning rate, speed)
after every validation and when training ends, on rank 0."""
from __future__ import annotations

import logging
import os

from rs3d.engine.hooks.base import HookBase
from rs3d.evaluation.plots import plot_training_curves

logger = logging.getLogger("rs3d")


class CurvesHook(HookBase):
    """Draws the run's metrics records (``trainer.monitor.records``) as ``curves.png`` in ``output_dir``."""

    def __init__(self, output_dir: str) -> None:
        self.path = os.path.join(output_dir, "curves.png")

    def draw(self) -> None:
        t = self.trainer
        if not t.dist.is_main:
            return
        try:
            plot_training_curves(t.monitor.records, self.path)
        except (OSError, ValueError, RuntimeError) as e:  # a picture is never worth a run
            logger.warning("curves.png not drawn: %s", e)

    def after_epoch(self) -> None:
        if any(key.startswith("val_") for key in self.trainer.epoch_summary):
            self.draw()

    def after_train(self) -> None:
        self.draw()
