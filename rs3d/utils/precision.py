"""Mixed precision: the autocast dtype a TRAIN.MIXED_PRECISION value means on a device, and its context."""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "bf16", "fp16", "off")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ("auto": bf16 on GPU, none on CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"TRAIN.MIXED_PRECISION must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for ``dtype`` (a no-op context when None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
