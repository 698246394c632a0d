"""Training and testing: the RS-recipe trainer, evaluation loops, checkpoints, distributed setup."""

from rs3d.engine.checkpoint import CheckpointError, CheckpointManager, load_checkpoint, save_atomic
from rs3d.engine.distributed import DistInfo, init_distributed
from rs3d.engine.ema import ModelEma, ema_decay
from rs3d.engine.optim import build_optimizer, build_scheduler, parameter_groups, scaled_lr, warmup_cosine
from rs3d.engine.testing import run_test
from rs3d.engine.trainer import NonFiniteLossError, Trainer

__all__ = [
    "CheckpointError",
    "CheckpointManager",
    "DistInfo",
    "ModelEma",
    "NonFiniteLossError",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "ema_decay",
    "init_distributed",
    "load_checkpoint",
    "parameter_groups",
    "run_test",
    "save_atomic",
    "scaled_lr",
    "warmup_cosine",
]
