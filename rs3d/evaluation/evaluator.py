"""Run a model over a clip loader: single-view validation or multi-view testing, all ranks merged."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from rs3d.data import ClipNormalizer, SkipTracker
from rs3d.evaluation.metrics import ClassificationMeter
from rs3d.evaluation.multiview import aggregate_views, forward_views
from rs3d.utils.precision import autocast


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, normalizer: ClipNormalizer, amp_dtype: torch.dtype | None,
             aggregation: str = "softmax_mean", max_clips: int = 32,
             skips: SkipTracker | None = None,
             progress: Callable[[int, int, int], None] | None = None) -> ClassificationMeter:
    """Per-video probabilities (views aggregated) for every valid video of ``loader``, gathered over ranks.

    Unreadable videos are left out of the metrics and reported through ``skips``. ``progress(batches_done,
    total_batches, videos_done)`` is called after every batch (e.g. an :class:`EvalProgress`).
    """
    was_training = model.training
    model.eval()
    meter = ClassificationMeter()
    criterion = nn.CrossEntropyLoss()
    videos_done = 0
    for done, batch in enumerate(loader, start=1):
        if skips is not None:
            skips.update(batch["failures"])
        valid = batch["valid"]
        videos_done += len(valid)
        if not valid.any():
            _report(progress, done, loader, videos_done)
            continue
        # The uint8 batch goes to the device whole (one asynchronous copy from pinned memory); unreadable videos
        # are dropped there, and clips become float only max_clips at a time, inside forward_views.
        videos = batch["video"].to(normalizer.device, non_blocking=True)  # (N, V, 3, T, H, W) uint8
        if not bool(valid.all()):
            videos = videos[valid.to(normalizer.device)]
        labels = batch["label"][valid].to(normalizer.device)
        with autocast(normalizer.device, amp_dtype):
            logits = forward_views(model, videos, max_clips, transform=normalizer).float()
        probs = aggregate_views(logits, aggregation)
        loss = criterion(torch.log(probs.clamp_min(1e-12)), labels)
        meter.update(probs, labels, batch["index"][valid], float(loss))
        _report(progress, done, loader, videos_done)
    meter.gather()
    model.train(was_training)
    return meter


def _report(progress: Callable[[int, int, int], None] | None, done: int, loader: Iterable, videos: int) -> None:
    if progress is not None:
        progress(done, len(loader) if hasattr(loader, "__len__") else done, videos)
