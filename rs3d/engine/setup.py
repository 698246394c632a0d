"""Run setup shared by training, testing and tools: seeding, determinism, precision, loading weights."""
from __future__ import annotations

import contextlib
import logging
import os
import random

import numpy as np
import torch
from torch import nn

from rs3d.engine.checkpoint import CheckpointError, load_checkpoint

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "bf16", "fp16", "off")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; optionally require deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def limit_cpu_threads(num_workers: int, processes_per_machine: int = 1) -> int:
    """On CPU, leave one core per loader worker: oversubscribed OpenMP threads spin and can slow steps 10x."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(1, processes_per_machine) - num_workers)
    torch.set_num_threads(threads)
    return threads


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for TRAIN.MIXED_PRECISION ("auto": bf16 on GPU, none on CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"TRAIN.MIXED_PRECISION must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast context for ``dtype`` (a no-op context when None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def exported_state(checkpoint: dict) -> dict:
    """The weights a checkpoint exports: its EMA model when it has one, else the raw model.

    Also reads PySlowFast / pytorchvideo model-zoo files (``model_state``, maybe saved under DDP with a
    ``module.`` prefix), so published baseline weights load into the matching pytorchvideo baseline.
    """
    ema = checkpoint.get("ema")
    if isinstance(ema, dict) and "module" in ema:
        state = ema["module"]
    elif "model" in checkpoint:
        state = checkpoint["model"]
    elif "model_state" in checkpoint:
        state = checkpoint["model_state"]
    elif "state_dict" in checkpoint:
        state = checkpoint["state_dict"]
    else:
        state = checkpoint  # a bare state dict
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_weights(model: nn.Module, path: str, prefer_ema: bool = True, checkpoint: dict | None = None) -> list[str]:
    """Load a checkpoint's weights for fine-tuning or testing; tensors of another shape (a new head) are
    left at their fresh initialisation. Returns the names of the re-initialised tensors.

    ``checkpoint`` is the already loaded file, when the caller has it (``path`` then only names it in messages).
    """
    checkpoint = load_checkpoint(path) if checkpoint is None else checkpoint
    state = exported_state(checkpoint if prefer_ema else {k: v for k, v in checkpoint.items() if k != "ema"})
    own = model.state_dict()
    reinit = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in reinit}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in reinit]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{path}: does not fit MODEL.ARCH (missing {missing[:4]}, unexpected "
                              f"{result.unexpected_keys[:4]}); is it a checkpoint of this architecture?")
    if reinit:
        logger.warning("%s: re-initialised %s (shape differs: another number of classes?)", path, ", ".join(reinit))
    return reinit
