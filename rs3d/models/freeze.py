"""Fine-tuning switches applied when a model is built: frozen BatchNorm (statistics and affine fixed, as Detectron2's
``FrozenBatchNorm2d``) and frozen early stages (stem and the first N stages get no gradients)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm3d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters, all buffers (no gradients, no weight decay, never
    updated, also under ``model.train()``); same state-dict keys as ``nn.BatchNorm3d``."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((num_features,), value))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @classmethod
    def from_batchnorm(cls, bn: nn.modules.batchnorm._BatchNorm) -> FrozenBatchNorm3d:
        frozen = cls(bn.num_features, bn.eps)
        with torch.no_grad():
            if bn.affine:
                frozen.weight.copy_(bn.weight)
                frozen.bias.copy_(bn.bias)
            if bn.track_running_stats:
                frozen.running_mean.copy_(bn.running_mean)
                frozen.running_var.copy_(bn.running_var)
        return frozen.to(bn.weight.device if bn.affine else frozen.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def freeze_batchnorm(model: nn.Module) -> int:
    """Replace every BatchNorm in ``model`` by a :class:`FrozenBatchNorm3d` with its current values; returns the
    count."""
    count = 0
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, FrozenBatchNorm3d.from_batchnorm(child))
            count += 1
        else:
            count += freeze_batchnorm(child)
    return count


def early_modules(model: nn.Module, num_stages: int) -> list[nn.Module]:
    """The stem and the first ``num_stages`` stages: rs3d ``stem`` + ``stages[:n]``, pytorchvideo ``blocks[:n+1]``
    (its last block is the head, never frozen)."""
    if hasattr(model, "stem") and hasattr(model, "stages"):
        stem, stages = model.stem, list(model.stages)
    elif getattr(model, "blocks", None) is not None:
        stem, stages = model.blocks[0], list(model.blocks)[1:-1]
    else:
        raise ValueError(f"cannot find the stages of {type(model).__name__}")
    if num_stages > len(stages):
        raise ValueError(f"cannot freeze {num_stages} stages: the model has {len(stages)}")
    return [stem, *stages[:num_stages]]


def freeze_stages(model: nn.Module, num_stages: int) -> list[str]:
    """Stop gradients in the stem and the first ``num_stages`` stages (-1: none; 0: the stem only). Their BN
    layers are frozen too, so their outputs stay as pretrained. Returns the frozen parameter names."""
    if num_stages < 0:
        return []
    modules = early_modules(model, num_stages)
    for module in modules:
        freeze_batchnorm(module)
        for param in module.parameters():
            param.requires_grad_(False)
    frozen = {id(p) for m in modules for p in m.parameters()}
    return [n for n, p in model.named_parameters() if id(p) in frozen]
