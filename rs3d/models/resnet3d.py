"""3D ResNet and 3D ResNet-RS (TF Model Garden ``resnet_3d.py`` / ``nn_blocks_3d.py`` layout), in PyTorch.

One model class; every ResNet-RS change (deep stem, SE, self-gating, stochastic depth, temporal kernels and
strides, avg-down shortcut) is a constructor argument, so the plain R3D-50 baseline is the same code.
Input (N, 3, T, H, W) -> logits (N, num_classes) at any clip length and crop size.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from rs3d.models.conv import ConvImpl, create_conv3d
from rs3d.models.layers import DropPath, PaddedMaxPool3d, SelfGating3d, SqueezeExcite3d, channel_mean, tail_scale
from rs3d.models.padding import Padding
from rs3d.models.registry import ModelArgumentError, register_model

StemType = Literal["v0", "v1"]
StemPool = Literal["max", "conv"]
Shortcut = Literal["tf", "avg_down"]

EXPANSION = 4
STAGE_WIDTHS = (64, 128, 256, 512)
#: Blocks per stage for each ResNet-RS depth (Bello et al. 2021, Table 7; TF RESNET_SPECS).
RS_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
    270: (4, 29, 53, 4),
    350: (4, 36, 72, 4),
    420: (4, 44, 87, 4),
}
#: Per-block temporal kernels of the TF Model Garden R3D-50 baseline (``ResNet3D50`` in ``backbones_3d.py``).
R3D50_TEMPORAL_KERNELS = ((3, 3, 3), (3, 1, 3, 1), (3, 1, 3, 1, 3, 1), (1, 3, 1))


def stage_widths(width_multiplier: float = 1.0, num_stages: int = len(STAGE_WIDTHS)) -> list[int]:
    """Bottleneck widths of the first ``num_stages`` stages scaled by ``width_multiplier`` (rounded, at least 1):
    the one rounding rule for width scaling, used by the config builder and :func:`resnet3d_rs` alike."""
    return [max(1, int(round(w * width_multiplier))) for w in STAGE_WIDTHS[:num_stages]]


def _bn(channels: int, eps: float, momentum: float) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=eps, momentum=momentum)


class Stem(nn.Module):
    """Stem "v0" ([kt,7,7] conv) or "v1" (ResNet-D: three 3x3 convs), then a max-pool or a strided conv.

    Args:
        in_channels: input channels.
        width: output channels (the v1 stem's first two convs use ``width // 2``).
        stem_type: ``"v0"`` or ``"v1"``.
        temporal_kernel, temporal_stride: of the first conv (its spatial stride is 2).
        pool: ``"max"`` (TF) or ``"conv"`` (timm's strided conv + BN + ReLU).
        pool_temporal_stride: 1 (a ``[1, 3, 3]`` pool) or 2 (``[3, 3, 3]``); spatial stride 2 either way.
        padding: ``"torch"`` or ``"tf_same"`` (TF "SAME").
        bn_eps, bn_momentum: BatchNorm settings (PyTorch momentum convention).
        conv_impl: how convolutions run (:func:`rs3d.models.conv.create_conv3d`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        stem_type: StemType = "v1",
        temporal_kernel: int = 5,
        temporal_stride: int = 2,
        pool: StemPool = "max",
        pool_temporal_stride: int = 1,
        padding: Padding = "torch",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        conv_impl: ConvImpl = "conv3d",
    ) -> None:
        super().__init__()
        first_stride = (temporal_stride, 2, 2)
        if stem_type == "v0":
            convs = [(in_channels, width, (temporal_kernel, 7, 7), first_stride)]
        elif stem_type == "v1":
            half = width // 2
            convs = [
                (in_channels, half, (temporal_kernel, 3, 3), first_stride),
                (half, half, (1, 3, 3), (1, 1, 1)),
                (half, width, (1, 3, 3), (1, 1, 1)),
            ]
        else:
            raise ValueError(f"stem_type must be 'v0' or 'v1', got {stem_type!r}")
        for i, (cin, cout, kernel, stride) in enumerate(convs, start=1):
            self.add_module(f"conv{i}", create_conv3d(cin, cout, kernel, stride, padding=padding, impl=conv_impl))
            self.add_module(f"bn{i}", _bn(cout, bn_eps, bn_momentum))
        self.num_convs = len(convs)
        self.act = nn.ReLU(inplace=True)

        pool_kernel = (1 if pool_temporal_stride == 1 else 3, 3, 3)
        pool_stride = (pool_temporal_stride, 2, 2)
        if pool == "max":
            self.pool: nn.Module = PaddedMaxPool3d(pool_kernel, pool_stride, padding=padding)
        elif pool == "conv":
            self.pool = nn.Sequential(OrderedDict(
                conv=create_conv3d(width, width, pool_kernel, pool_stride, padding=padding, impl=conv_impl),
                bn=_bn(width, bn_eps, bn_momentum),
                act=nn.ReLU(inplace=True),
            ))
        else:
            raise ValueError(f"stem pool must be 'max' or 'conv', got {pool!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.num_convs + 1):
            x = self.act(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        return self.pool(x)


def make_shortcut(
    in_channels: int,
    out_channels: int,
    stride: tuple[int, int, int],
    kind: Shortcut,
    bn_eps: float,
    bn_momentum: float,
    conv_impl: ConvImpl = "conv3d",
) -> nn.Module:
    """TF shortcut (projection when channels change, strided 1x1x1 max-pool when only the stride does)
    or the 2D ResNet-RS/ResNet-D one (average-pool then projection)."""
    strided = stride != (1, 1, 1)
    if kind == "tf":
        if in_channels != out_channels:
            return nn.Sequential(OrderedDict(
                conv=create_conv3d(in_channels, out_channels, 1, stride, impl=conv_impl),
                bn=_bn(out_channels, bn_eps, bn_momentum),
            ))
        return nn.MaxPool3d(1, stride) if strided else nn.Identity()
    if kind == "avg_down":
        if in_channels == out_channels and not strided:
            return nn.Identity()
        pool = (nn.AvgPool3d(stride, stride, ceil_mode=True, count_include_pad=False)
                if strided else nn.Identity())
        return nn.Sequential(OrderedDict(
            pool=pool,
            conv=create_conv3d(in_channels, out_channels, 1, impl=conv_impl),
            bn=_bn(out_channels, bn_eps, bn_momentum),
        ))
    raise ValueError(f"shortcut must be 'tf' or 'avg_down', got {kind!r}")


class Bottleneck3d(nn.Module):
    """[kt,1,1] conv -> [1,3,3] conv (spatial stride) -> 1x1x1 conv to 4f, then self-gating, SE,
    stochastic depth, + shortcut, ReLU (TF ``BottleneckBlock3D`` order).

    Args:
        in_channels: input channels.
        width: bottleneck width f; the block outputs ``4 * f`` channels.
        temporal_kernel, temporal_stride: of the first (``[kt, 1, 1]``) conv.
        spatial_stride: of the ``[1, 3, 3]`` conv.
        se_ratio: squeeze-excitation ratio (0: no SE).
        self_gating: add a self-gating unit before SE.
        drop_path_rate: stochastic-depth probability of dropping the residual branch.
        shortcut: ``"tf"`` or ``"avg_down"`` (see :func:`make_shortcut`).
        padding: ``"torch"`` or ``"tf_same"``.
        bn_eps, bn_momentum: BatchNorm settings.
        conv_impl: how convolutions run (:func:`rs3d.models.conv.create_conv3d`).
        fused_tail: apply self-gating, SE and stochastic depth as one per-(sample, channel) scale fused with the
            residual add (:func:`rs3d.models.layers.tail_scale`; the same function, less memory traffic).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        temporal_kernel: int = 1,
        temporal_stride: int = 1,
        spatial_stride: int = 1,
        se_ratio: float = 0.25,
        self_gating: bool = False,
        drop_path_rate: float = 0.0,
        shortcut: Shortcut = "tf",
        padding: Padding = "torch",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        conv_impl: ConvImpl = "conv3d",
        fused_tail: bool = True,
    ) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        conv = dict(padding=padding, impl=conv_impl)
        self.conv1 = create_conv3d(in_channels, width, (temporal_kernel, 1, 1), (temporal_stride, 1, 1), **conv)
        self.bn1 = _bn(width, bn_eps, bn_momentum)
        self.conv2 = create_conv3d(width, width, (1, 3, 3), (1, spatial_stride, spatial_stride), **conv)
        self.bn2 = _bn(width, bn_eps, bn_momentum)
        self.conv3 = create_conv3d(width, out_channels, 1, **conv)
        self.bn3 = _bn(out_channels, bn_eps, bn_momentum)
        self.gate = SelfGating3d(out_channels) if self_gating else nn.Identity()
        self.se = SqueezeExcite3d(out_channels, se_ratio) if se_ratio > 0 else nn.Identity()
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        stride = (temporal_stride, spatial_stride, spatial_stride)
        self.shortcut = make_shortcut(in_channels, out_channels, stride, shortcut, bn_eps, bn_momentum, conv_impl)
        self.act = nn.ReLU(inplace=True)
        self.fused_tail = fused_tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        x = self.act(self.bn1(self.conv1(x)))
        x = self.act(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        if not self.fused_tail:
            return self.act(self.drop_path(self.se(self.gate(x))) + shortcut)
        scale = tail_scale(x, self.gate, self.se, self.drop_path)
        return self.act(x + shortcut if scale is None else torch.addcmul(shortcut, x, scale[:, :, None, None, None]))


def per_block_kernels(
    temporal_kernels: Sequence[int | Sequence[int]], blocks: Sequence[int]
) -> list[list[int]]:
    """Expand per-stage temporal kernels (an int per stage, or a list per stage) to one value per block."""
    if len(temporal_kernels) != len(blocks):
        raise ValueError(f"temporal_kernels has {len(temporal_kernels)} stages, blocks has {len(blocks)}")
    out = []
    for stage, (kernels, count) in enumerate(zip(temporal_kernels, blocks)):
        if isinstance(kernels, int):
            out.append([kernels] * count)
        elif len(kernels) == count:
            out.append([int(k) for k in kernels])
        else:
            raise ValueError(f"stage {stage} has {count} blocks but {len(kernels)} temporal kernels")
    return out


class ResNet3D(nn.Module):
    """3D ResNet / ResNet-RS classifier: stem, bottleneck stages, global average pool, dropout, linear.

    The defaults build R3D-RS-50 as TF Model Garden does; :func:`resnet3d_rs` and :func:`resnet3d_r50_baseline`
    name the published variants. Input ``(N, in_channels, T, H, W)`` float clips, output ``(N, num_classes)``.

    Args:
        blocks: bottleneck blocks per stage (ResNet-RS depths: :data:`RS_BLOCKS`).
        widths: bottleneck width of each stage; a block outputs ``4 * width`` channels.
        num_classes: size of the classifier.
        in_channels: input channels (3 for RGB).
        stem_type: ``"v1"`` the ResNet-RS deep stem (three 3x3 convs, widths ``stem_width/2, stem_width/2,
            stem_width``) or ``"v0"`` one ``[kt, 7, 7]`` conv.
        stem_width: stem output channels (64).
        stem_temporal_kernel: temporal kernel of the first stem conv (5).
        stem_temporal_stride: temporal stride of the first stem conv (2 halves the frames).
        stem_pool: ``"max"`` (TF's 3x3 max-pool) or ``"conv"`` (timm's strided 3x3 conv + BN + ReLU).
        pool_temporal_stride: temporal stride of the stem pool (1; 2 makes it a ``[3, 3, 3]`` pool).
        temporal_kernels: temporal kernel of each block's first conv: one int per stage, or a list per stage
            with one value per block.
        temporal_strides: temporal stride of each stage's first block.
        spatial_strides: spatial stride of each stage's first block (1, 2, 2, 2).
        se_ratio: squeeze-excitation bottleneck ratio (0 disables SE).
        self_gating: a self-gating unit on the last block of each stage (TF 3D ResNet-RS).
        shortcut: ``"tf"`` (projection or strided max-pool) or ``"avg_down"`` (ResNet-D average pool, as timm).
        drop_path_rate: stochastic-depth rate; stage ``i`` (0-based) uses ``rate * (i + 2) / 5``.
        dropout_rate: dropout before the classifier.
        padding: ``"torch"`` (symmetric) or ``"tf_same"`` (TF "SAME", needed for numerical parity with TF weights).
        bn_eps: BatchNorm epsilon.
        bn_momentum: BatchNorm momentum in PyTorch's convention (1 - Keras momentum).
        conv_impl: ``"conv3d"``, ``"lowered"`` (factorised convs as 2D convs / GEMMs on copy-free views of
            channels_last_3d inputs) or ``"auto"`` (lowered on CUDA); see :mod:`rs3d.models.conv`.
        fused_tail: self-gating, SE and stochastic depth applied as one scale (see :class:`Bottleneck3d`), and
            channel means (SE, gate, head) whose gradient is a broadcast view (:func:`rs3d.models.layers.channel_mean`).
    """

    def __init__(
        self,
        blocks: Sequence[int] = RS_BLOCKS[50],
        widths: Sequence[int] = STAGE_WIDTHS,
        num_classes: int = 400,
        in_channels: int = 3,
        stem_type: StemType = "v1",
        stem_width: int = 64,
        stem_temporal_kernel: int = 5,
        stem_temporal_stride: int = 2,
        stem_pool: StemPool = "max",
        pool_temporal_stride: int = 1,
        temporal_kernels: Sequence[int | Sequence[int]] = (1, 1, 3, 3),
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        spatial_strides: Sequence[int] = (1, 2, 2, 2),
        se_ratio: float = 0.25,
        self_gating: bool = True,
        shortcut: Shortcut = "tf",
        drop_path_rate: float = 0.1,
        dropout_rate: float = 0.5,
        padding: Padding = "torch",
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        conv_impl: ConvImpl = "conv3d",
        fused_tail: bool = True,
    ) -> None:
        super().__init__()
        for name, values in (("widths", widths), ("temporal_strides", temporal_strides),
                             ("spatial_strides", spatial_strides)):
            if len(values) != len(blocks):
                raise ValueError(f"{name} has {len(values)} entries but there are {len(blocks)} stages")
        kernels = per_block_kernels(temporal_kernels, blocks)
        norm = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.stem = Stem(in_channels, stem_width, stem_type, stem_temporal_kernel, stem_temporal_stride,
                         stem_pool, pool_temporal_stride, padding, **norm, conv_impl=conv_impl)
        stages = []
        channels = stem_width
        for i, count in enumerate(blocks):
            rate = drop_path_rate * (i + 2) / 5  # TF get_stochastic_depth_rate(init, i + 2, 5)
            stage = []
            for j in range(count):
                stage.append(Bottleneck3d(
                    channels, widths[i], kernels[i][j],
                    temporal_strides[i] if j == 0 else 1,
                    spatial_strides[i] if j == 0 else 1,
                    se_ratio=se_ratio, self_gating=self_gating and j == count - 1,
                    drop_path_rate=rate, shortcut=shortcut, padding=padding, **norm,
                    conv_impl=conv_impl, fused_tail=fused_tail,
                ))
                channels = widths[i] * EXPANSION
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.num_features = channels
        self.fused_tail = fused_tail
        self.dropout = nn.Dropout(dropout_rate)
        self.fc = nn.Linear(channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """TF Model Garden init: truncated-normal fan-in convs, self-gating std 0.01, head uniform(+-0.05)."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                fan_in = module.weight[0].numel()
                std = math.sqrt(1.0 / fan_in) / 0.87962566103423978  # Keras VarianceScaling correction
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, SelfGating3d):
                nn.init.trunc_normal_(module.fc.weight, std=0.01, a=-0.02, b=0.02)
        nn.init.uniform_(self.fc.weight, -0.05, 0.05)
        nn.init.zeros_(self.fc.bias)

    def compile_regions(self) -> list[nn.Module]:
        """The stem and every block: what ``TRAIN.COMPILE_SCOPE regional`` compiles (:mod:`rs3d.models.regions`)."""
        return [self.stem, *(block for stage in self.stages for block in stage)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) clip -> last stage feature map."""
        return self.stages(self.stem(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pool over T, H, W, dropout, linear. With ``fused_tail`` the pool's gradient is a
        broadcast view (:func:`rs3d.models.layers.channel_mean`), not an NCDHW tensor the last ReLU reads."""
        pooled = channel_mean(features) if self.fused_tail else features.mean(dim=(2, 3, 4))
        return self.fc(self.dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def resnet3d_rs(depth: int = 50, width_multiplier: float = 1.0, **kwargs) -> ResNet3D:
    """3D ResNet-RS at a paper depth (TF ``resnet_3d_rs`` defaults: deep stem, SE 0.25, self-gating, kt 1,1,3,3)."""
    if depth not in RS_BLOCKS:
        raise ValueError(f"depth must be one of {sorted(RS_BLOCKS)}, got {depth}")
    return ResNet3D(blocks=RS_BLOCKS[depth], widths=stage_widths(width_multiplier), **kwargs)


def resnet3d_r50_baseline(**kwargs) -> ResNet3D:
    """The TF Model Garden R3D-50 baseline: [5,7,7] stem, [3,3,3] pool, per-block kernels, self-gating, no SE/SD."""
    options = dict(stem_type="v0", pool_temporal_stride=2, temporal_kernels=R3D50_TEMPORAL_KERNELS,
                   se_ratio=0.0, drop_path_rate=0.0)
    options.update(kwargs)
    return ResNet3D(blocks=RS_BLOCKS[50], **options)


def resnet_rs_2d_equivalent(depth: int = 50, **kwargs) -> ResNet3D:
    """The 2D ResNet-RS (timm ``resnetrs{depth}``) as a 3D model: temporal kernels 1, conv stem pool,
    avg-down shortcuts, no self-gating. Override temporal knobs to get an inflatable 3D model."""
    options = dict(stem_temporal_kernel=1, stem_temporal_stride=1, stem_pool="conv",
                   temporal_kernels=(1, 1, 1, 1), self_gating=False, shortcut="avg_down")
    options.update(kwargs)
    return resnet3d_rs(depth, **options)


@register_model("resnet3d", section="MODEL.RESNET3D")
def resnet3d(
    num_classes: int = 400,
    in_channels: int = 3,
    dropout_rate: float = 0.5,
    depth: int = 50,
    blocks: Sequence[int] = (),
    width_multiplier: float = 1.0,
    temporal_kernels: Sequence[int] = (1, 1, 3, 3),
    temporal_kernels_per_block: Sequence[Sequence[int]] = (),
    **options,
) -> ResNet3D:
    """``MODEL.ARCH resnet3d``: a ResNet-RS ``depth`` (or explicit ``blocks`` per stage) at ``width_multiplier``,
    per-stage ``temporal_kernels`` unless ``temporal_kernels_per_block`` lists one per block; every other
    MODEL.RESNET3D key is the :class:`ResNet3D` argument of the same name."""
    if blocks:
        stages = [int(b) for b in blocks]
    elif depth in RS_BLOCKS:
        stages = list(RS_BLOCKS[depth])
    else:
        raise ModelArgumentError("depth", f"{depth} is not one of {sorted(RS_BLOCKS)} (or set BLOCKS)")
    kernels = [list(k) for k in temporal_kernels_per_block] or list(temporal_kernels)
    return ResNet3D(blocks=stages, widths=stage_widths(width_multiplier, len(stages)), num_classes=num_classes,
                    in_channels=in_channels, dropout_rate=dropout_rate, temporal_kernels=kernels, **options)
