"""The RS recipe's optimiser pieces: linear LR scaling, decay-only-on-weights groups, warm-up + cosine."""
from __future__ import annotations

import math

import torch
from torch import nn

from rs3d.models.layers import SelfGating3d

# Parameters of these modules never get weight decay (normalisation layers and the self-gating conv).
NO_DECAY_MODULES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
                                                 SelfGating3d)


def scaled_lr(base_lr: float, reference_batch: int, global_batch: int) -> float:
    """Linear scaling rule: ``base_lr`` is defined at ``reference_batch`` clips per step."""
    return base_lr * global_batch / reference_batch


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: conv/linear weights with decay; biases, norm parameters and self-gating without."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        exempt = isinstance(module, NO_DECAY_MODULES)
        for name, param in module.named_parameters(recurse=exempt):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if exempt or name.endswith("bias") or param.ndim <= 1:
                no_decay.append(param)
            else:
                decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float,
                    nesterov: bool = True, fused: bool | None = None) -> torch.optim.SGD:
    """SGD with (Nesterov) momentum over :func:`parameter_groups`.

    ``fused=None`` picks the fused kernel (one launch for every parameter) when all parameters are on a GPU,
    and torch's default elsewhere; the update is the same SGD arithmetic either way.
    """
    groups = parameter_groups(model, weight_decay)
    if fused is None:
        params = [p for g in groups for p in g["params"]]
        fused = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, fused=fused or None)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """LR multiplier at ``step``: linear from 0 over the warm-up, then cosine down to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                    warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step LambdaLR following :func:`warmup_cosine` (its state_dict resumes exactly)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps))
