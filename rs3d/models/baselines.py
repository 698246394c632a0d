"""Baseline video models built by pytorchvideo's own model builders (not re-typed here).

The zoo's head pools with a fixed window; we size that window from the clip length and crop so every
baseline maps (N, 3, T, H, W) to (N, num_classes) for the clip shape it is trained on, and (through
pytorchvideo's global output pool) at larger test crops too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import nn

from rs3d.models.registry import register_model

with warnings.catch_warnings():  # pytorchvideo 0.1.5 calls the deprecated torch.jit.script at import time
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from pytorchvideo.models import hub
    from pytorchvideo.models.x3d import create_x3d

#: ResNet-style pytorchvideo builders and the total temporal downsampling before their head.
_RESNETS: dict[str, tuple[Callable[..., nn.Module], int]] = {
    "slow_r50": (hub.slow_r50, 1),
    "c2d_r50": (hub.c2d_r50, 2),
    "i3d_r50": (hub.i3d_r50, 2),
    "r2plus1d_r50": (hub.r2plus1d_r50, 4),
}
#: X3D depth factors of the pytorchvideo zoo (width and bottleneck factors are create_x3d's defaults).
_X3D_DEPTH: dict[str, float] = {"x3d_xs": 2.2, "x3d_s": 2.2, "x3d_m": 2.2, "x3d_l": 5.0}
SPATIAL_STRIDE = 32

PYTORCHVIDEO_ARCHS = tuple(_RESNETS) + tuple(_X3D_DEPTH)


def build_pytorchvideo_model(
    arch: str, num_classes: int, num_frames: int, crop_size: int, dropout_rate: float = 0.5
) -> nn.Module:
    """A pytorchvideo baseline (random init) for clips of ``num_frames`` x ``crop_size``^2."""
    if crop_size < SPATIAL_STRIDE:
        raise ValueError(f"crop size {crop_size} is below the network stride {SPATIAL_STRIDE} for {arch}")
    if arch in _X3D_DEPTH:
        return create_x3d(
            input_clip_length=num_frames, input_crop_size=crop_size, depth_factor=_X3D_DEPTH[arch],
            model_num_class=num_classes, dropout_rate=dropout_rate,
        )
    if arch not in _RESNETS:
        raise ValueError(f"unknown pytorchvideo architecture {arch!r}; known: {', '.join(PYTORCHVIDEO_ARCHS)}")
    builder, temporal_stride = _RESNETS[arch]
    if num_frames % temporal_stride:
        raise ValueError(f"{arch} needs a frame count divisible by {temporal_stride}, got {num_frames}")
    model = builder(model_num_class=num_classes)
    head = model.blocks[-1]
    head.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else None
    head_pool = (num_frames // temporal_stride, crop_size // SPATIAL_STRIDE, crop_size // SPATIAL_STRIDE)
    head.pool = nn.AvgPool3d(head_pool, stride=1)  # the zoo hard-codes its training clip's window
    return model


def published_weights() -> dict[str, str]:
    """Baseline -> URL of pytorchvideo's published Kinetics-400 weights (pytorchvideo's own hub tables)."""
    from pytorchvideo.models.hub import r2plus1d, resnet, x3d

    table = {**resnet.checkpoint_paths, **x3d.checkpoint_paths, **r2plus1d.checkpoint_paths}
    return {arch: table[arch] for arch in PYTORCHVIDEO_ARCHS if arch in table}


def _register(arch: str) -> None:
    """Register ``arch`` as a function of the clip shape it is trained on."""
    def build(num_classes: int, num_frames: int, crop_size: int, dropout_rate: float = 0.5) -> nn.Module:
        return build_pytorchvideo_model(arch, num_classes, num_frames, crop_size, dropout_rate)

    build.__name__ = build.__qualname__ = arch
    build.__doc__ = f"``MODEL.ARCH {arch}``: pytorchvideo's {arch} (:func:`build_pytorchvideo_model`)."
    register_model(arch)(build)


for _arch in PYTORCHVIDEO_ARCHS:
    _register(_arch)
