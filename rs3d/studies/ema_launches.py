"""Counting dispatched ATen ops (each one a kernel launch on a GPU), and the per-tensor EMA update rs3d used
before its foreach version, kept as the reference that version is measured and tested against."""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """``with OpCounter() as c: ...`` then ``c.count``: every ATen op dispatched inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


@torch.no_grad()
def loop_ema_update(average: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """The per-tensor EMA update: two kernels per floating tensor, one copy per integer one."""
    current = model.state_dict()
    for name, avg in average.state_dict().items():
        new = current[name].detach()
        if avg.dtype.is_floating_point:
            avg.mul_(decay).add_(new.to(avg.dtype), alpha=1.0 - decay)
        else:
            avg.copy_(new)
