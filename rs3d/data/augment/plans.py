"""Nearest-neighbour geometric ops (Rotate, Shear, Translate of both policies) as precomputed plans, in one cache.

A plan is made once per op, argument and frame size from the op's source pixels (``tf_spec.tf_source_pixels`` or
``tv_spec.torchvision_source_pixels``: the flat source pixel of every output pixel, -1 outside the frame). On the
CPU (:func:`cpu_plan`, :func:`remap`) pure shifts become block copies and anything else one byte gather; on any
device (:func:`gather_through_plan`) it is one ``index_select`` with an extra fill column. Both are exact.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["PLAN_CACHE_SIZE", "cpu_plan", "gather_through_plan", "remap"]

PLAN_CACHE_SIZE = 192  # plans of every form and device; the oldest goes first
_PLANS: dict[tuple, Any] = {}

CpuPlan = list[tuple[int, ...]] | np.ndarray


def _cached(key: tuple, make: Callable[[], Any]) -> Any:
    """The plan under ``key``, made on a miss (first in, first out beyond PLAN_CACHE_SIZE)."""
    if key not in _PLANS:
        if len(_PLANS) >= PLAN_CACHE_SIZE:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = make()
    return _PLANS[key]


def cpu_plan(key: tuple, height: int, width: int, source: Callable[[], np.ndarray]) -> CpuPlan:
    """The CPU plan of an op: blocks (y0, y1, x0, x1, source y0, source x0) that move by pure shifts (translations,
    ShearX), or else flat gather indices where index H*W is the fill column.

    Args:
        key: what identifies the op and its argument (the frame size is added).
        height, width: the frame size.
        source: makes the (H, W) source pixels on a cache miss.
    """
    def make() -> CpuPlan:
        pixels = source()
        blocks = _row_blocks(pixels)
        if blocks is not None and len(blocks) <= height // 2:
            return blocks  # ShearY's narrow column blocks copy slower than a gather
        return np.where(pixels < 0, height * width, pixels).reshape(-1)

    return _cached(("cpu", *key, height, width), make)


def _row_blocks(source: np.ndarray) -> list[tuple[int, ...]] | None:
    """Merge rows that each copy one run of one source row into blocks; None if some row does not."""
    width = source.shape[1]
    blocks: list[list[int]] = []
    for y, row in enumerate(source):
        inside = np.flatnonzero(row >= 0)
        if inside.size == 0:
            continue
        x0, x1 = int(inside[0]), int(inside[-1]) + 1
        sy, sx = divmod(int(row[x0]), width)
        if x1 - x0 != inside.size or sx + x1 - x0 > width or not (np.diff(row[x0:x1]) == 1).all():
            return None
        last = blocks[-1] if blocks else None
        if last and last[1] == y and last[2:4] == [x0, x1] and last[5] == sx and last[4] + y - last[0] == sy:
            last[1] = y + 1
        else:
            blocks.append([y, y + 1, x0, x1, sy, sx])
    return [tuple(block) for block in blocks]


def remap(video: torch.Tensor, plan: CpuPlan, fill: np.ndarray) -> torch.Tensor:
    """Apply a :func:`cpu_plan` to every frame and channel of a contiguous CPU uint8 (..., H, W) tensor; pixels
    mapped from outside get ``fill`` (one uint8 value, or one per channel)."""
    height, width = video.shape[-2:]
    out = torch.empty(video.shape, dtype=torch.uint8)
    if isinstance(plan, list):
        if len(fill) == 1:
            out.fill_(int(fill[0]))
        else:
            out.copy_(torch.from_numpy(fill).view(-1, 1, 1).expand_as(out))
        for y0, y1, x0, x1, sy, sx in plan:
            out[..., y0:y1, x0:x1] = video[..., sy:sy + y1 - y0, sx:sx + x1 - x0]
        return out
    rows = video.numel() // (height * width)
    source = np.empty((rows, height * width + 1), dtype=np.uint8)
    source[:, :-1] = video.numpy().reshape(rows, -1)
    source[:, -1] = np.resize(fill, rows)
    np.take(source, plan, axis=1, out=out.numpy().reshape(rows, -1), mode="clip")
    return out


def gather_through_plan(videos: torch.Tensor, key: tuple, source: Callable[[], np.ndarray],
                        fill: int) -> torch.Tensor:
    """A nearest-neighbour geometric op on (..., H, W) uint8 planes as one gather (exact on every device).

    Args:
        videos: the planes, on any device.
        key: what identifies the op and its argument (the frame size and device are added).
        source: makes the (H, W) flat source pixel of every output pixel (-1 = outside) on a cache miss.
        fill: the value of pixels from outside the frame (an extra column the plan points at).
    """
    height, width = videos.shape[-2:]

    def make() -> torch.Tensor:
        flat = source().reshape(-1)
        return torch.from_numpy(np.where(flat < 0, height * width, flat)).to(videos.device)

    index = _cached(("gather", *key, height, width, videos.device), make)
    planes = videos.reshape(-1, height * width)
    padded = torch.cat([planes, planes.new_full((len(planes), 1), fill)], dim=1)
    return padded.index_select(1, index).view(videos.shape)
