"""Is a training state free of NaN and Inf? Checked before every checkpoint write and when choosing one to resume
from, so a diverged run never overwrites or replaces a good checkpoint.

The check is one fused reduction per (device, dtype): ``torch._foreach_norm(tensors, inf)`` (the largest
absolute value of each tensor, NaN if any element is NaN, Inf if any is Inf; unlike a sum or a 2-norm it cannot
overflow on finite values), then ``isfinite().all()`` over those results, read once: a handful of kernels and
host syncs for a whole model, EMA and optimizer, instead of one per tensor.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch

#: The parts of a trainer checkpoint that hold learned or optimizer values.
STATE_PARTS = ("model", "ema", "optimizer")


def floating_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every non-empty floating-point tensor in nested dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and obj.numel():
            yield obj.detach()
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from floating_tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from floating_tensors(value)


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """True when no element of any tensor is NaN or Inf (one reduction per device and dtype)."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    for group in groups.values():
        peaks = torch._foreach_norm(group, math.inf)
        if not bool(torch.stack(peaks).isfinite().all()):
            return False
    return True


def non_finite_parts(state: dict, parts: Iterable[str] = STATE_PARTS) -> list[str]:
    """Names of the ``parts`` of a checkpoint ``state`` that hold a NaN or Inf (empty when all are finite)."""
    present = [p for p in parts if state.get(p) is not None]
    if all_finite(t for p in present for t in floating_tensors(state[p])):
        return []
    return [p for p in present if not all_finite(floating_tensors(state[p]))]
