"""Small 3D building blocks: padded max-pool (PyTorch or TensorFlow SAME), SE, self-gating, drop path, the block
tail that applies the last three as one per-(sample, channel) scale, and a channel mean whose gradient is a view."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rs3d.models.padding import Int3, Padding, check_padding, same_padding, triple


class PaddedMaxPool3d(nn.MaxPool3d):
    """``nn.MaxPool3d`` with symmetric or TensorFlow SAME padding (padded values never win the max)."""

    def __init__(self, kernel_size: int | Int3, stride: int | Int3, padding: Padding = "torch") -> None:
        kernel, strides = triple(kernel_size), triple(stride)
        symmetric = tuple(k // 2 for k in kernel) if padding == "torch" else 0
        super().__init__(kernel, strides, padding=symmetric)
        self.tf_same = check_padding(padding) == "tf_same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            pads = same_padding(tuple(x.shape[-3:]), self.kernel_size, self.stride)
            x = F.pad(x, pads, value=float("-inf"))
        return super().forward(x)


class _ChannelMean(torch.autograd.Function):
    """``x.mean(dim=(2, 3, 4))`` whose backward returns ``grad / (T*H*W)`` broadcast as a stride-0 view.

    PyTorch's mean backward divides the expanded gradient, which writes a full (N, C, T, H, W) tensor in NCDHW
    order even for a channels_last_3d ``x``; the next op (the residual add of ``x``'s other gradient, or ReLU's
    backward) then reads two layouts at once (uncoalesced on a GPU). Dividing the (N, C) gradient first and
    broadcasting gives bitwise the same values with no full-size write (``tests/models/test_channel_mean.py``)."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3, 4))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.shape = inputs[0].shape

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = ctx.shape
        return (grad / (t * h * w))[:, :, None, None, None].expand(n, c, t, h, w)


def channel_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of an (N, C, T, H, W) tensor over (T, H, W), as ``x.mean(dim=(2, 3, 4))``; when a gradient is
    needed it comes back as a broadcast view, not a materialised NCDHW tensor (see :class:`_ChannelMean`)."""
    if x.requires_grad and torch.is_grad_enabled():
        return _ChannelMean.apply(x)
    return x.mean(dim=(2, 3, 4))


def pointwise(conv: nn.Conv3d, pooled: torch.Tensor) -> torch.Tensor:
    """A 1x1x1 ``nn.Conv3d`` applied to pooled (N, C) features as a linear layer (its 5-D weight viewed as 2-D):
    the state dict keeps the conv's keys and shapes, the compute is one small GEMM instead of a 3D conv."""
    return F.linear(pooled, conv.weight.squeeze((2, 3, 4)), conv.bias)


def channel_scale(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, T, H, W) times a per-(sample, channel) ``scale`` of shape (N, C) or (N, 1)."""
    return x * scale[:, :, None, None, None]


class SqueezeExcite3d(nn.Module):
    """Squeeze-excitation: mean over (T, H, W), reduce FC + ReLU, expand FC + sigmoid, rescale channels.

    The FCs are 1x1x1 ``nn.Conv3d`` parameters (TF's layout and state-dict keys) computed as linear layers."""

    def __init__(self, channels: int, ratio: float = 0.25) -> None:
        super().__init__()
        reduced = max(1, int(channels * ratio))
        self.fc1 = nn.Conv3d(channels, reduced, 1, bias=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1, bias=True)

    def factor(self, pooled: torch.Tensor) -> torch.Tensor:
        """The (N, C) excitation of channel means ``pooled``."""
        return torch.sigmoid(pointwise(self.fc2, F.relu(pointwise(self.fc1, pooled))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_scale(x, self.factor(x.mean(dim=(2, 3, 4))))


class SelfGating3d(nn.Module):
    """S3D-G self-gating: mean over (T, H, W), FC with bias, sigmoid, rescale channels (FC as in SE)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv3d(channels, channels, 1, bias=True)

    def factor(self, pooled: torch.Tensor) -> torch.Tensor:
        """The (N, C) gate of channel means ``pooled``."""
        return torch.sigmoid(pointwise(self.fc, pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_scale(x, self.factor(x.mean(dim=(2, 3, 4))))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``rate``, else scale it up."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = float(rate)

    def factor(self, x: torch.Tensor) -> torch.Tensor | None:
        """The (N, 1) per-sample factor (0 or 1 / keep) for ``x``, or None when nothing is dropped. Draws the same
        random numbers in every variant of the block tail, so a seed gives the same masks with or without fusion."""
        if not self.training or self.rate == 0.0:
            return None
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return mask.view(x.shape[0], 1) / keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = self.factor(x)
        return x if factor is None else channel_scale(x, factor)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def tail_scale(x: torch.Tensor, gate: nn.Module, se: nn.Module, drop_path: nn.Module) -> torch.Tensor | None:
    """The one (N, C) factor by which self-gating, then SE, then stochastic depth multiply a block output ``x``
    (each may be ``nn.Identity``); None when all three are off.

    Each of the three multiplies by a constant per (sample, channel), so their product applied once is the same
    function (float64: logits and every gradient equal to ~1e-15, ``tests/models/test_conv_lowering.py``) and reads and
    writes the (N, C, T, H, W) tensor once instead of three or four times. SE pools the gated tensor, whose
    channel means are the gate times ``x``'s means, so ``x`` is pooled once, by :func:`channel_mean` (its gradient
    joins the residual's as a broadcast, with no NCDHW tensor in between).
    """
    scale = None
    if isinstance(gate, SelfGating3d) or isinstance(se, SqueezeExcite3d):
        pooled = channel_mean(x)
        if isinstance(gate, SelfGating3d):
            scale = gate.factor(pooled)
            pooled = pooled * scale
        if isinstance(se, SqueezeExcite3d):
            excite = se.factor(pooled)
            scale = excite if scale is None else scale * excite
    if isinstance(drop_path, DropPath):
        dropped = drop_path.factor(x)
        if dropped is not None:
            scale = dropped if scale is None else scale * dropped
    return None if scale is None else scale.to(x.dtype)
