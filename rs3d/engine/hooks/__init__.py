"""Training hooks: the pieces of a run that happen around the optimisation loop. The loop in
:mod:`rs3d.engine.trainer` only calls them, so a profiler, another logger or a stop handler is a new hook, not an
edit of the loop. One module per family:

- :mod:`~rs3d.engine.hooks.base`: ``HookBase`` (the moments, ``state_dict``), the trainer view hooks get.
- :mod:`~rs3d.engine.hooks.step`: around every step (EMA update, per-rank seeding).
- :mod:`~rs3d.engine.hooks.evaluation`: precise BN and validation.
- :mod:`~rs3d.engine.hooks.checkpointing`: checkpoints, the best score, the final model.
- :mod:`~rs3d.engine.hooks.progress`: the progress line and training metrics.
- :mod:`~rs3d.engine.hooks.diagnosis`: speed diagnostics (input-bound, compile time).
- :mod:`~rs3d.engine.hooks.pictures`: ``curves.png``.
- :mod:`~rs3d.engine.hooks.trackers`: experiment trackers (Weights & Biases) beside TensorBoard.
- :mod:`~rs3d.engine.hooks.preemption`: stop signals become a checkpoint and a clean exit.
- :mod:`~rs3d.engine.hooks.debug`: fault injection for crash-recovery tests.

Each hook takes plain arguments (``Trainer.build_hooks`` translates the config) and reads the run through
``self.trainer``, set by ``TrainerBase.register_hooks``. A new hook family is a new module here.
"""
from rs3d.engine.hooks.base import HookBase, TrainerView, is_period
from rs3d.engine.hooks.checkpointing import CheckpointHook, validation_score
from rs3d.engine.hooks.debug import CrashAtStepHook
from rs3d.engine.hooks.diagnosis import CompileTimeHook, InputBoundHook, InputBoundReport
from rs3d.engine.hooks.evaluation import EvalHook, PreciseBNHook
from rs3d.engine.hooks.pictures import CurvesHook
from rs3d.engine.hooks.preemption import (
    INTERRUPTED_EXIT_CODE,
    PREEMPTED_EXIT_CODE,
    PreemptedError,
    PreemptionHook,
)
from rs3d.engine.hooks.progress import ProgressHook
from rs3d.engine.hooks.step import EMAHook, RankSeedHook
from rs3d.engine.hooks.trackers import TRACKERS, TrackerHook, WandbHook, build_tracker_hooks

__all__ = [
    "INTERRUPTED_EXIT_CODE",
    "PREEMPTED_EXIT_CODE",
    "TRACKERS",
    "CheckpointHook",
    "CompileTimeHook",
    "CrashAtStepHook",
    "CurvesHook",
    "EMAHook",
    "EvalHook",
    "HookBase",
    "InputBoundHook",
    "InputBoundReport",
    "PreciseBNHook",
    "PreemptedError",
    "PreemptionHook",
    "ProgressHook",
    "RankSeedHook",
    "TrackerHook",
    "TrainerView",
    "WandbHook",
    "build_tracker_hooks",
    "is_period",
    "validation_score",
]
