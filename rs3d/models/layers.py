"""Small 3D building blocks: padded conv/pool (PyTorch or TensorFlow SAME), SE, self-gating, drop path."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Padding = Literal["torch", "tf_same"]
Int3 = tuple[int, int, int]


def triple(value: int | tuple[int, ...]) -> Int3:
    """Expand an int to (t, h, w); pass a 3-tuple through."""
    if isinstance(value, int):
        return (value, value, value)
    if len(value) != 3:
        raise ValueError(f"expected an int or 3 values, got {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


def same_padding(size: tuple[int, ...], kernel: Int3, stride: Int3) -> list[int]:
    """TensorFlow SAME padding for the last three dims, in ``F.pad`` order (w_before, w_after, h..., t...).

    Per dim: out = ceil(n / s), total = max((out - 1) * s + k - n, 0), before = total // 2, after = the rest.
    """
    pads: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride))):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


class Conv3d(nn.Conv3d):
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
        symmetric = tuple(k // 2 for k in kernel) if padding == "torch" else 0
        super().__init__(in_channels, out_channels, kernel, strides, padding=symmetric, bias=bias)
        self.tf_same = _check_padding(padding) == "tf_same" and any(k > 1 for k in kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            x = F.pad(x, same_padding(tuple(x.shape[-3:]), self.kernel_size, self.stride))
        return super().forward(x)


class MaxPool3d(nn.MaxPool3d):
    """``nn.MaxPool3d`` with symmetric or TensorFlow SAME padding (padded values never win the max)."""

    def __init__(self, kernel_size: int | Int3, stride: int | Int3, padding: Padding = "torch") -> None:
        kernel, strides = triple(kernel_size), triple(stride)
        symmetric = tuple(k // 2 for k in kernel) if padding == "torch" else 0
        super().__init__(kernel, strides, padding=symmetric)
        self.tf_same = _check_padding(padding) == "tf_same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            pads = same_padding(tuple(x.shape[-3:]), self.kernel_size, self.stride)
            x = F.pad(x, pads, value=float("-inf"))
        return super().forward(x)


def _check_padding(padding: str) -> str:
    if padding not in ("torch", "tf_same"):
        raise ValueError(f"padding must be 'torch' or 'tf_same', got {padding!r}")
    return padding


class SqueezeExcite3d(nn.Module):
    """Squeeze-excitation: mean over (T, H, W), reduce conv + ReLU, expand conv + sigmoid, rescale channels."""

    def __init__(self, channels: int, ratio: float = 0.25) -> None:
        super().__init__()
        reduced = max(1, int(channels * ratio))
        self.fc1 = nn.Conv3d(channels, reduced, 1, bias=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3, 4), keepdim=True)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class SelfGating3d(nn.Module):
    """S3D-G self-gating: mean over (T, H, W), 1x1x1 conv with bias, sigmoid, rescale channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv3d(channels, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4), keepdim=True)))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``rate``, else scale it up."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"
