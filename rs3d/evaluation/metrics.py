"""Classification metrics: top-k, per-class accuracy, confusion matrix, distributed gather, running means."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor


def topk_correct(logits: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many rows have their label among the k highest scores, for each k (k clamped to the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # (N, kmax), best first
    hits = top.eq(labels.to(top.device).view(-1, 1))
    return [int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


class ClassificationMeter:
    """Per-video scores and labels for one evaluation pass; merges ranks and drops the sampler's padding."""

    def __init__(self) -> None:
        self._scores: list[Tensor] = []
        self._labels: list[Tensor] = []
        self._ids: list[Tensor] = []
        self._has_ids = True  # False once any update came without video ids (then no de-duplication)
        self._loss_sum, self._loss_count = 0.0, 0
        self._synced = False

    def update(self, scores: Tensor, labels: Tensor, video_ids: Tensor | None = None,
               loss: float | None = None) -> None:
        """Add a batch: scores (N, C), labels (N), optional dataset indices (N) and mean batch loss."""
        self._scores.append(scores.detach().float().cpu())
        self._labels.append(labels.detach().long().cpu().view(-1))
        if video_ids is None:
            self._has_ids = False
        else:
            self._ids.append(video_ids.detach().long().cpu().view(-1))
        if loss is not None:
            self._loss_sum += float(loss) * len(labels)
            self._loss_count += len(labels)
        self._synced = False

    @property
    def scores(self) -> Tensor:
        """All scores (N, C) in the order kept (sorted by video id after :meth:`gather`)."""
        return torch.cat(self._scores) if self._scores else torch.zeros(0, 0)

    @property
    def labels(self) -> Tensor:
        """All labels (N,)."""
        return torch.cat(self._labels) if self._labels else torch.zeros(0, dtype=torch.long)

    @property
    def video_ids(self) -> Tensor | None:
        """All video ids (N,), or None if some batch had none."""
        return torch.cat(self._ids) if self._has_ids and self._ids else None

    def gather(self) -> None:
        """Collect every rank's videos on every rank and keep one row per video id (no-op without dist)."""
        if not (dist.is_available() and dist.is_initialized()) or self._synced:
            return
        local = (self.scores, self.labels, self.video_ids, self._has_ids, self._loss_sum, self._loss_count)
        parts: list = [None] * dist.get_world_size()
        dist.all_gather_object(parts, local)  # pickled CPU tensors: works with gloo and NCCL
        # the loss is a sample-weighted mean over everything seen, padded repeats included
        self._loss_sum, self._loss_count = sum(p[4] for p in parts), sum(p[5] for p in parts)
        parts = [p for p in parts if len(p[1])]  # ranks that saw no video hold no (N, C) scores
        self._has_ids = all(p[3] for p in parts)
        self._scores = [torch.cat([p[0] for p in parts])] if parts else []
        self._labels = [torch.cat([p[1] for p in parts])] if parts else []
        self._ids = [torch.cat([p[2] for p in parts])] if parts and self._has_ids else []
        if self._ids:
            _, first = np.unique(self._ids[0].numpy(), return_index=True)  # sorted by id; first copy wins
            keep = torch.from_numpy(first)
            self._scores, self._labels, self._ids = ([t[0][keep]] for t in (self._scores, self._labels, self._ids))
        self._synced = True

    def confusion_matrix(self, num_classes: int | None = None) -> Tensor:
        """Counts (C, C), int64: rows are true classes, columns predicted classes."""
        labels = self.labels
        c = num_classes or (self.scores.shape[1] if len(labels) else 0)
        if not len(labels):
            return torch.zeros(c, c, dtype=torch.long)
        pred = self.scores.argmax(dim=1)
        return torch.bincount(labels * c + pred, minlength=c * c).view(c, c)

    def summary(self) -> dict[str, float]:
        """top1/top5 and mean per-class recall (over classes present in the labels), in percent."""
        labels, n = self.labels, len(self.labels)
        out: dict[str, float] = {"num_videos": n}
        if n:
            top1, top5 = topk_correct(self.scores, labels, (1, 5))
            matrix = self.confusion_matrix()
            support = matrix.sum(dim=1)
            present = support > 0
            recall = matrix.diag()[present].double() / support[present].double()
            out.update(top1=100.0 * top1 / n, top5=100.0 * top5 / n,
                       mean_class_accuracy=100.0 * float(recall.mean()))
        else:
            out.update(top1=math.nan, top5=math.nan, mean_class_accuracy=math.nan)
        if self._loss_count:
            out["loss"] = self._loss_sum / self._loss_count
        return out


class SmoothedValue:
    """Running value for log lines (loss, data time, step time): windowed median/mean and global mean."""

    def __init__(self, window: int = 20) -> None:
        self.window: deque[float] = deque(maxlen=window)
        self.total, self.count = 0.0, 0

    def update(self, value: float, n: int = 1) -> None:
        """Record ``value`` (a mean over ``n`` items)."""
        self.window.append(float(value))
        self.total += float(value) * n
        self.count += n

    @property
    def value(self) -> float:
        """The latest value."""
        return self.window[-1] if self.window else math.nan

    @property
    def avg(self) -> float:
        """Mean over the window."""
        return sum(self.window) / len(self.window) if self.window else math.nan

    @property
    def median(self) -> float:
        """Median over the window (robust to a slow step)."""
        return float(np.median(self.window)) if self.window else math.nan

    @property
    def global_avg(self) -> float:
        """Count-weighted mean over everything recorded."""
        return self.total / self.count if self.count else math.nan

    def __str__(self) -> str:
        return f"{self.avg:.4f} ({self.global_avg:.4f})"


AverageMeter = SmoothedValue  # the name many training loops use
