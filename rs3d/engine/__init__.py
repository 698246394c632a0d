"""Training: the hook-based RS-recipe trainer, its hooks, EMA, optimiser/schedule and run monitoring."""

from rs3d.engine.ema import ModelEma, ema_decay
from rs3d.engine.hooks import (
    CheckpointHook,
    EMAHook,
    EvalHook,
    HookBase,
    PreciseBNHook,
    ProgressHook,
)
from rs3d.engine.optim import (
    build_optimizer,
    build_scheduler,
    parameter_groups,
    scaled_lr,
    warmup_cosine,
)
from rs3d.engine.trainer import NonFiniteLossError, Trainer, TrainerBase

__all__ = [
    "CheckpointHook",
    "EMAHook",
    "EvalHook",
    "HookBase",
    "ModelEma",
    "NonFiniteLossError",
    "PreciseBNHook",
    "ProgressHook",
    "Trainer",
    "TrainerBase",
    "build_optimizer",
    "build_scheduler",
    "ema_decay",
    "parameter_groups",
    "scaled_lr",
    "warmup_cosine",
]
