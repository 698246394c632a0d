"""``TRAIN.COMPILE`` for the training step, including the combinations torch.compile does not handle on its own.

Dynamo cannot trace ``nn.SyncBatchNorm`` (its autograd.Function takes a process group; pytorch/pytorch#161302,
open): it graph-breaks there at best and fails with DDP at worst (pytorch/pytorch#107372). With SyncBN every BN
layer is therefore excluded from compilation explicitly (``torch.compiler.disable``): the model compiles as the
pieces between BN layers, which keeps the fusions inside them and runs SyncBN eagerly, as it would anyway.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger("rs3d")


def compile_training_net(net: nn.Module, model: nn.Module, backend: str | object = "inductor") -> nn.Module:
    """``torch.compile(net, backend=backend)`` (the model or its DDP wrapper) with ``model``'s SyncBatchNorm layers
    left eager."""
    sync_bn = [m for m in model.modules() if isinstance(m, nn.SyncBatchNorm)]
    for module in sync_bn:
        module.forward = torch.compiler.disable(module.forward)
    if sync_bn:
        logger.warning("TRAIN.COMPILE with TRAIN.SYNC_BN: torch.compile cannot trace SyncBatchNorm, so its %d layers "
                       "run eagerly between compiled pieces (smaller speed-up); with >= 8 clips per GPU, plain BN "
                       "(TRAIN.SYNC_BN False) usually trains as well", len(sync_bn))
    return torch.compile(net, backend=backend)
