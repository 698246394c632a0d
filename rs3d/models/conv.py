"""The one place that makes the 3D ResNets' convolutions: :func:`create_conv3d` (as timm's ``create_conv2d``).

Every conv of RS3D but the stem's first is factorised: ``(1, kh, kw)``, ``(kt, 1, 1)`` or ``(1, 1, 1)``. On a
``channels_last_3d`` tensor (N, C, T, H, W) with strides (THWC, 1, HWC, WC, C) each of them is a 2D problem on a
view that needs no copy:

- ``(1, kh, kw)``, temporal stride 1: the frames are a batch, ``(N*T, C, H, W)`` in NHWC, a ``Conv2d``;
- ``(kt, 1, 1)``, spatial stride 1: the pixels are a width, ``(N, C, T, H*W)`` in NHWC, a ``Conv2d`` with kernel
  ``(kt, 1)``;
- ``(1, 1, 1)``, stride 1: a matrix product of the ``(N*T*H*W, C)`` pixels with the ``(O, C)`` weight.

cuDNN and cuBLAS have far more tuned kernels for these 2D/GEMM shapes than for 3D convolutions (issue 19: the
bf16 RS3D-50 step ran at 6.9% of an H200's peak with ``Conv3d``). ``LoweredConv3d`` keeps the 5-D weight, so
state dicts, timm inflation, the TF port and ``reset_parameters`` see an ordinary ``nn.Conv3d``; where a view
does not apply (a temporal stride on a ``(1, k, k)`` conv, a spatial stride on a ``(k, 1, 1)`` one, a
contiguous NCDHW input, the stem's ``(5, 3, 3)``) it runs ``Conv3d`` itself. The views were checked in float64
for output and input and weight gradients (``tests/models/test_conv_lowering.py``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from rs3d.models.padding import Int3, Padding, check_padding, same_padding, triple

ConvImpl = Literal["conv3d", "lowered", "auto"]
CONV_IMPLS: tuple[str, ...] = ("conv3d", "lowered", "auto")
#: Routes a factorised conv can take on a channels_last_3d input (``None``: no view applies, run Conv3d).
Route = Literal["pointwise", "spatial", "temporal"]


class PaddedConv3d(nn.Conv3d):
    """``nn.Conv3d`` with either symmetric ``k // 2`` padding ("torch") or TensorFlow SAME padding ("tf_same")."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Int3,
        stride: int | Int3 = 1,
        bias: bool = False,
        padding: Padding = "torch",
    ) -> None:
        kernel, strides = triple(kernel_size), triple(stride)
        symmetric = tuple(k // 2 for k in kernel) if check_padding(padding) == "torch" else 0
        super().__init__(in_channels, out_channels, kernel, strides, padding=symmetric, bias=bias)
        self.tf_same = padding == "tf_same" and any(k > 1 for k in kernel)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """TensorFlow SAME's (possibly asymmetric) padding as an explicit pad; the input unchanged otherwise."""
        if self.tf_same:
            return F.pad(x, same_padding(tuple(x.shape[-3:]), self.kernel_size, self.stride))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad(x))


def lowering_route(kernel: Int3, stride: Int3, padding: Int3) -> Route | None:
    """Which 2D view computes a conv of this kernel, stride and (symmetric) padding exactly; None if none does."""
    kt, kh, kw = kernel
    st, sh, sw = stride
    pt, ph, pw = padding
    if kernel == (1, 1, 1) and stride == (1, 1, 1) and padding == (0, 0, 0):
        return "pointwise"
    if kt == 1 and st == 1 and pt == 0:
        return "spatial"
    if kh == kw == 1 and sh == sw == 1 and ph == pw == 0:
        return "temporal"
    return None


class LoweredConv3d(PaddedConv3d):
    """A :class:`PaddedConv3d` that runs as ``Conv2d`` or a matrix product on copy-free views of a channels_last_3d
    input (see the module docstring), and as ``Conv3d`` where no view applies. Same parameters, same results.

    Args:
        in_channels, out_channels, kernel_size, stride, bias, padding: as :class:`PaddedConv3d`.
        devices: device types on which the lowering is used (``("cuda",)`` for ``CONV_IMPL auto``, where the
            2D kernels are the faster ones; every device for ``lowered``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Int3,
        stride: int | Int3 = 1,
        bias: bool = False,
        padding: Padding = "torch",
        devices: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, bias, padding)
        conv_padding = (0, 0, 0) if isinstance(self.padding, str) else tuple(self.padding)
        plain = self.groups == 1 and self.dilation == (1, 1, 1) and self.padding_mode == "zeros"
        self.route: Route | None = lowering_route(self.kernel_size, self.stride, conv_padding) if plain else None
        self.devices = devices

    def lowers(self, x: torch.Tensor) -> bool:
        """Whether this input takes the 2D route: a view applies, the device is enabled, the layout is NTHWC."""
        return (self.route is not None and (self.devices is None or x.device.type in self.devices)
                and x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pad(x)
        if not self.lowers(x):
            return nn.Conv3d.forward(self, x)
        if self.route == "pointwise":
            weight = self.weight.squeeze((2, 3, 4))  # (O, C): a view, whose gradient is a view back
            return F.linear(x.permute(0, 2, 3, 4, 1), weight, self.bias).permute(0, 4, 1, 2, 3)
        if self.route == "spatial":
            n, t = x.shape[0], x.shape[2]
            frames = x.transpose(1, 2).flatten(0, 1)  # (N*T, C, H, W), NHWC
            out = F.conv2d(frames, self.weight.squeeze(2), self.bias, self.stride[1:], self.padding[1:])
            return out.unflatten(0, (n, t)).transpose(1, 2)
        h, w = x.shape[3], x.shape[4]
        columns = x.flatten(3, 4)  # (N, C, T, H*W), NHWC
        out = F.conv2d(columns, self.weight.squeeze(4), self.bias, (self.stride[0], 1), (self.padding[0], 0))
        return out.unflatten(3, (h, w))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", route={self.route}"


def create_conv3d(
    in_channels: int,
    out_channels: int,
    kernel_size: int | Int3,
    stride: int | Int3 = 1,
    bias: bool = False,
    padding: Padding = "torch",
    impl: ConvImpl = "conv3d",
) -> PaddedConv3d:
    """A 3D conv for the ResNet models: ``impl`` "conv3d" (``nn.Conv3d``), "lowered" (2D views on every device)
    or "auto" (2D views on CUDA, where they measured faster, ``Conv3d`` elsewhere). Weights and state-dict keys are
    the same for all three."""
    if impl == "conv3d":
        return PaddedConv3d(in_channels, out_channels, kernel_size, stride, bias, padding)
    if impl in ("lowered", "auto"):
        devices = None if impl == "lowered" else ("cuda",)
        return LoweredConv3d(in_channels, out_channels, kernel_size, stride, bias, padding, devices)
    raise ValueError(f"conv_impl must be one of {', '.join(CONV_IMPLS)}, got {impl!r}")
