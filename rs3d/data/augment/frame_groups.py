"""CPU helpers of the per-clip kernels: running a frame-wise kernel on cache-sized groups of frames, and numpy's
fast float -> uint8 cast."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["GROUP_ELEMENTS", "by_frame_groups", "float_to_uint8"]

GROUP_ELEMENTS = 640 * 1024  # 4 frames of 3x224x224: ~2.4 MB as float32


def by_frame_groups(video: torch.Tensor, kernel: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run a kernel that treats frames independently on groups of about ``GROUP_ELEMENTS`` values: its float,
    int16 and index temporaries then stay in the CPU cache and never need fresh pages from the OS (measured in a
    train worker: Sharpness, Color, Contrast and Brightness ~1.5-2x faster, Equalize 20 -> 9 ms per 32x224 clip)."""
    frames = video.reshape(-1, *video.shape[-3:])
    step = max(1, GROUP_ELEMENTS // frames[0].numel())
    if step >= len(frames):
        return kernel(video)
    out = torch.empty(frames.shape, dtype=torch.uint8)
    for first in range(0, len(frames), step):
        out[first:first + step] = kernel(frames[first:first + step])
    return out.view(video.shape)


def float_to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Float CPU image already clamped to [0, 255] -> uint8, truncating like ``Tensor.to(torch.uint8)`` but faster."""
    return torch.from_numpy(image.numpy().astype(np.uint8))
