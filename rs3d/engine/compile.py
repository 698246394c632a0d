"""``TRAIN.COMPILE`` for the training step: regional (each block) or whole-model, with the cases torch.compile does
not handle on its own.

Regional compilation (``TRAIN.COMPILE_SCOPE regional``, PyTorch's recipe for models made of repeated blocks)
compiles the stem and every residual block in place (``nn.Module.compile``): blocks with the same signature share
one compiled graph, so RS3D-50 compiles 13 small graphs (stem + first / middle / last block of 4 stages) instead of
one graph of the whole network, which did not finish within 150 s on an H200 host (issue 19). The state dict keeps
its keys (no ``_orig_mod.`` prefix). All regions share one code object (``Module._call_impl``), so dynamo's
recompile limit (8 by default) is raised to cover every signature in training and evaluation at a few input
shapes; otherwise blocks past the limit would silently run eagerly. Shapes are static (``dynamic=False``):
every block keeps kernels specialised to its sizes. ``torch.compiler.nested_compile_region`` (one whole-model
graph that traces each repeated block once) does not fit: its ``invoke_subgraph`` refuses in-place buffer
mutations in training (torch 2.14), and BatchNorm's running statistics are exactly that.

Compile time is not always lower: on a 2-core CPU, where inductor builds every graph with a C++ compiler, regional
compilation of RS3D-50 (13 forward + 13 backward graphs) took 295 s against 176 s for the whole model (fresh
caches each, ``tools/benchmark_levers.py`` measures it); what it guarantees is graphs that stay small as depth
grows, state-dict keys unchanged, and eager code between regions.

Dynamo cannot trace ``nn.SyncBatchNorm`` (its autograd.Function takes a process group; pytorch/pytorch#161302,
open): it graph-breaks there at best and fails with DDP at worst (pytorch/pytorch#107372). With SyncBN every BN
layer is therefore excluded from compilation explicitly (``torch.compiler.disable``): the model compiles as the
pieces between BN layers, which keeps the fusions inside them and runs SyncBN eagerly, as it would anyway.
"""
from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import nn

from rs3d.models.regions import compile_regions

logger = logging.getLogger("rs3d")

CompileScope = Literal["regional", "whole"]
COMPILE_SCOPES: tuple[str, ...] = ("regional", "whole")
#: Distinct compiled variants a region may need: train and eval mode, each at up to three input shapes (training
#: crop, validation crop, test crop). The recompile limit is this times the number of regions.
_VARIANTS_PER_REGION = 6


def raise_recompile_limits(entries: int) -> None:
    """Let dynamo keep at least ``entries`` compiled variants of one function before it falls back to eager."""
    config = torch._dynamo.config
    for name in ("recompile_limit", "accumulated_recompile_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), entries))


def compile_training_net(net: nn.Module, model: nn.Module, backend: str | object = "inductor",
                         scope: CompileScope = "regional") -> nn.Module:
    """Compile the training network: ``model``'s stem and blocks in place (``scope="regional"``; ``net`` itself,
    the model or its DDP wrapper, is returned) or ``torch.compile(net)`` (``"whole"``), with ``model``'s
    SyncBatchNorm layers left eager. A model without known regions is compiled whole, with a warning."""
    if scope not in COMPILE_SCOPES:
        raise ValueError(f"compile scope must be one of {', '.join(COMPILE_SCOPES)}, got {scope!r}")
    sync_bn = [m for m in model.modules() if isinstance(m, nn.SyncBatchNorm)]
    for module in sync_bn:
        module.forward = torch.compiler.disable(module.forward)
    if sync_bn:
        logger.warning("TRAIN.COMPILE with TRAIN.SYNC_BN: torch.compile cannot trace SyncBatchNorm, so its %d layers "
                       "run eagerly between compiled pieces (smaller speed-up); with >= 8 clips per GPU, plain BN "
                       "(TRAIN.SYNC_BN False) usually trains as well", len(sync_bn))
    regions = compile_regions(model) if scope == "regional" else []
    if scope == "regional" and not regions:
        logger.warning("TRAIN.COMPILE_SCOPE regional: %s has no known blocks; compiling the whole model",
                       type(model).__name__)
    if not regions:
        return torch.compile(net, backend=backend)
    raise_recompile_limits(_VARIANTS_PER_REGION * len(regions))
    for region in regions:
        region.compile(backend=backend, dynamic=False)
    logger.info("TRAIN.COMPILE: %d regions (stem and blocks) compile on first use", len(regions))
    return net

