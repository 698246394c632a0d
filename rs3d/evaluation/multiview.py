"""Multi-view testing: run a model over every clip x crop of each video and ensemble the views."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

AGGREGATIONS = ("softmax_mean", "logit_mean", "max")


def aggregate_views(logits: Tensor, mode: str = "softmax_mean") -> Tensor:
    """Per-video class scores (N, C) from view logits (N, V, C).

    ``softmax_mean`` averages view probabilities (the PySlowFast ensemble); ``logit_mean`` is the softmax of
    the mean logits; ``max`` is the per-class maximum of view probabilities (not renormalised).
    """
    if logits.dim() != 3:
        raise ValueError(f"expected logits of shape (N, V, C), got {tuple(logits.shape)}")
    if mode == "softmax_mean":
        return logits.float().softmax(dim=-1).mean(dim=1)
    if mode == "logit_mean":
        return logits.float().mean(dim=1).softmax(dim=-1)
    if mode == "max":
        return logits.float().softmax(dim=-1).amax(dim=1)
    raise ValueError(f"unknown view aggregation {mode!r}; choose from {AGGREGATIONS}")


def split_views(batch_video: Tensor) -> Tensor:
    """(N, V, ...) -> (N*V, ...): every view becomes an ordinary clip, views of a video stay adjacent."""
    return batch_video.reshape(-1, *batch_video.shape[2:])


def merge_views(logits: Tensor, n: int) -> Tensor:
    """(N*V, C) -> (N, V, C), the inverse of :func:`split_views` on the model output."""
    if logits.shape[0] % n:
        raise ValueError(f"{logits.shape[0]} rows do not split into {n} videos")
    return logits.reshape(n, -1, logits.shape[-1])


def forward_views(model: nn.Module, videos: Tensor, max_batch: int,
                  transform: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Logits (N, V, C) for videos (N, V, 3, T, H, W), at most ``max_batch`` clips per forward (bounded memory).

    ``transform`` (e.g. the uint8 -> float normaliser) is applied chunk by chunk, so only ``max_batch`` clips
    are ever held as float: a 30-view batch of 8 Kinetics videos is 1.5 GB as uint8 but 6 GB as float32.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    clips = split_views(videos)
    outputs = [model(transform(chunk) if transform else chunk) for chunk in torch.split(clips, max_batch)]
    return merge_views(torch.cat(outputs), videos.shape[0])
