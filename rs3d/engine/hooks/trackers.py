"""Experiment trackers beside TensorBoard, chosen by ``TRAIN.LOGGERS`` (e.g. ``[tensorboard, wandb]``).

A tracker hook subscribes to the trainer's monitor for the length of training, so it receives exactly the scalars
TensorBoard receives (``rs3d.engine.monitor.tagged_scalars``: ``train/loss``, ``val_ema/top1``...) at the same
optimizer step, on rank 0 only. It opens its run before training, closes it however training ends (finished,
stopped by a signal, an error), and keeps the run's id in its ``state_dict``, so a resumed training continues the
same tracker run. Its package is optional (``pip install rs3d[trackers]``); selecting a tracker that is not
installed stops with one line.

Weights & Biases: the project is ``$WANDB_PROJECT`` (default ``rs3d``), the run is named after OUTPUT_DIR, the
config is the run's config, and ``WANDB_MODE=offline`` keeps everything on local disk (``wandb sync`` uploads it
later). Its x-axis is the metric ``trainer/step`` (the optimizer step), not W&B's own ``_step``, which must only
grow and would drop the steps a run resumed from an earlier checkpoint logs again.

MLflow is not offered: ``mlflow-skinny`` alone pulls ~37 packages (a web server, cloud SDKs); TensorBoard's event
files, which MLflow can import, cover the same need.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from typing import Any

from rs3d.engine.hooks.base import HookBase
from rs3d.utils.errors import UserInputError

logger = logging.getLogger("rs3d")

#: The values ``TRAIN.LOGGERS`` accepts: TensorBoard (the monitor's own writer) and the tracker hooks below.
TRACKERS: tuple[str, ...] = ("tensorboard", "wandb")
#: The x-axis metric logged with every row.
STEP_KEY = "trainer/step"


def require_package(tracker: str, package: str) -> None:
    """Stop with one line when the selected ``tracker``'s ``package`` is not installed."""
    if importlib.util.find_spec(package) is None:
        raise UserInputError(f"TRAIN.LOGGERS: {tracker} is selected but the {package!r} package is not installed "
                             f"(pip install 'rs3d[trackers]', or drop {tracker} from TRAIN.LOGGERS)")


class TrackerHook(HookBase):
    """An experiment tracker fed by the monitor: subclasses open and close the run and write one row of scalars.

    Args:
        run_name: the run's name in the tracker (OUTPUT_DIR's folder name).
        config: the run's config as plain nested dicts, recorded with the run.
        directory: a local folder for the tracker's own files (None: the tracker's default).
    """

    tracker = ""  # the TRAIN.LOGGERS value
    package = ""  # the module it needs

    def __init__(self, run_name: str, config: dict[str, Any], directory: str | None = None):
        require_package(self.tracker, self.package)
        self.run_name, self.config, self.directory = run_name, config, directory
        self.run_id: str | None = None  # the tracker's id of this run, kept across a resume
        self.run: Any = None  # the open run (rank 0, during training)

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id} if self.run_id else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")

    def before_train(self) -> None:
        t = self.trainer
        if not t.dist.is_main:
            return
        self.run = self.open()
        t.monitor.add_writer(self)

    def after_train(self) -> None:
        if self.run is None:
            return
        t = self.trainer
        t.monitor.remove_writer(self)
        run, self.run = self.run, None
        self.finish(run, completed=t.completed, stopped=t.stop_requested())

    # the monitor's writer interface (rs3d.engine.monitor.ScalarWriter)
    def write(self, step: int, scalars: dict[str, float]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def open(self) -> Any:
        """Start (or, with ``run_id``, continue) the tracker's run; set ``run_id``; return the run."""
        raise NotImplementedError

    def finish(self, run: Any, completed: bool, stopped: bool) -> None:
        """End ``run``: ``completed`` when training ran to its end, ``stopped`` after a stop signal."""
        raise NotImplementedError


class WandbHook(TrackerHook):
    """Weights & Biases (``TRAIN.LOGGERS`` contains ``wandb``); see the module docstring."""

    tracker = "wandb"
    package = "wandb"

    def open(self) -> Any:
        wandb = importlib.import_module("wandb")
        try:
            run = wandb.init(project=os.environ.get("WANDB_PROJECT") or "rs3d", name=self.run_name,
                             config=self.config, dir=None if os.environ.get("WANDB_DIR") else self.directory,
                             id=self.run_id, resume="allow" if self.run_id else None, reinit="create_new",
                             settings=wandb.Settings(console="off"))  # rs3d's own log.txt keeps the output
        except wandb.errors.Error as e:  # no API key, no network: the user's setup, told in one line
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserInputError(f"TRAIN.LOGGERS: wandb could not start its run: {reason} (wandb login, or "
                                 f"WANDB_MODE=offline to keep it on local disk)") from None
        run.define_metric(STEP_KEY)
        run.define_metric("*", step_metric=STEP_KEY)
        self.run_id = run.id
        return run

    def write(self, step: int, scalars: dict[str, float]) -> None:
        self.run.log({STEP_KEY: step, **scalars})

    def finish(self, run: Any, completed: bool, stopped: bool) -> None:
        if stopped and not completed:
            run.mark_preempting()  # W&B shows it as preempted: rerunning the command continues it
        run.finish(exit_code=0 if completed else 1)


def build_tracker_hooks(loggers: list[str] | tuple[str, ...], run_name: str, config: dict[str, Any],
                        directory: str | None) -> list[TrackerHook]:
    """The tracker hooks ``loggers`` (``TRAIN.LOGGERS``) selects; TensorBoard is the monitor's own writer."""
    hooks = {"wandb": WandbHook}
    return [hooks[name](run_name, config, directory) for name in loggers if name in hooks]
