"""The batch a clip loader yields (``collate_clips``), declared so every consumer reads the same keys."""
from __future__ import annotations

from typing import TypedDict

from torch import Tensor


class ClipBatch(TypedDict, total=False):
    """One loader batch.

    Keys:
        video: uint8 clips. Training ``(N * K, 3, T, H, W)`` (K clips per video, flattened); testing
            ``(N, V, 3, T, H, W)`` with V views per video. Training with DATA.AUGMENT_ON_DEVICE: a list of N * K
            crops, ``(T, h, w, 3)`` each, not yet resized or augmented (see :mod:`rs3d.data.device_inputs`).
        label: int64 class per row of ``video``.
        index: int64 position of each row's video in the dataset (its annotation order).
        failures: ``(path, reason)`` of every video that could not be decoded while making this batch (training
            replaced them by other videos; testing marks them invalid).
        augment: training with DATA.AUGMENT_ON_DEVICE only: each row's random draws
            (:func:`rs3d.data.draws.encode_draws`), applied on the device by ``BatchAugment``.
        valid: testing only, bool per video: False where the video could not be decoded (its clips are zeros).
    """

    video: Tensor | list[Tensor]
    label: Tensor
    index: Tensor
    failures: list[tuple[str, str]]
    valid: Tensor
    augment: dict[str, Tensor]
