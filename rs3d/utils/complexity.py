"""Model size and cost: trainable parameters and fvcore FLOPs (one multiply-add counts as one FLOP)."""

from __future__ import annotations

import logging

import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; BN running statistics are buffers and are not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_gflops(
    model: nn.Module,
    clip_shape: tuple[int, int, int],
    in_channels: int = 3,
    conv_only: bool = False,
) -> float:
    """fvcore GFLOPs for one clip (one view) of (T, H, W), in eval mode; ``conv_only`` counts convolutions alone
    (the figure the pytorchvideo/PySlowFast zoo tables quote)."""
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    clip = torch.zeros((1, in_channels, *clip_shape), dtype=param.dtype, device=param.device)
    analysis = FlopCountAnalysis(model, clip)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)
    with torch.no_grad():
        total = analysis.by_operator().get("conv", 0) if conv_only else analysis.total()
    model.train(was_training)
    return total / 1e9
