"""Exponential moving average of the weights *and* BN statistics, with the RS warm-up on the decay."""
from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(decay: float, step: int) -> float:
    """Effective decay at update ``step`` (0-based): min(decay, (1 + t) / (10 + t)), so early EMA tracks fast."""
    return min(decay, (1.0 + step) / (10.0 + step))


class ModelEma:
    """A frozen copy of the model whose floating-point state follows ``ema = d * ema + (1 - d) * model``."""

    def __init__(self, model: nn.Module, decay: float = 0.9999):
        self.module = copy.deepcopy(_unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the current model into the average; integer buffers (BN batch counters) are copied."""
        d = ema_decay(self.decay, self.updates)
        self.updates += 1
        current = _unwrap(model).state_dict()
        for name, avg in self.module.state_dict().items():
            new = current[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.to(avg.dtype), alpha=1.0 - d)
            else:
                avg.copy_(new)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)
