"""Per-clip CPU kernels of TF Model Garden's RandAugment ops (policies "tf" and "tf_reflect", on loader workers),
bit-identical to TensorFlow (tests/data/augment/test_randaugment_tf.py checks every op against TF's own outputs).

They replay TF's float32 arithmetic (:mod:`~rs3d.data.augment.tf_spec`) on one planar (T, 3, H, W) uint8 clip. This
is the numpy twin of :mod:`~rs3d.data.augment.batch_kernels` (torch alone, whole batches, any device), kept only for
the ops where it measurably wins on one clip. ``tools/benchmark_randaugment.py`` times both on one clip (columns
"rs3d tf ms" and "batched kernel, 1 clip ms"); on a 32x3x224x224 clip, one thread, best-of-15 CPU ms, numpy vs
batched: Equalize 6.9 vs 15.2, Solarize 0.12 vs 7.7, Brightness 2.2 vs 6.6, Color 6.5 vs 14.7, Sharpness 24 vs 360,
Rotate 4.2 vs 12.1, ShearX 1.4 vs 11.4, ShearY 4.0 vs 12.0, TranslateX/Y 0.2-0.3 vs 11.5, Cutout 0.3 vs 6.1, and
Contrast 10.8 vs 23.5 (median of 15; the best runs tie at 9.9 vs 11.1, but the batched kernel's clip-sized
temporaries suffer on a busy machine): these stay here. The batched kernel ties on AutoContrast (median 5.7 vs 5.6),
SolarizeAdd (5.2 vs 4.0), Invert (0.19 vs 0.21) and Posterize (0.31 vs 0.31), so those ops run through it on one
clip too (their numpy twins were removed; :data:`BATCHED_ON_ONE_CLIP`).

How the kept ones stay fast: Equalize and Contrast are 256-entry tables per channel (per frame and channel for
Contrast, whose means TF sums by halving folds) built with TF's formula and applied a few frames at a time; Brightness, Color and Sharpness blend in float32 a few frames at a time; Sharpness smooths with
integer box sums and replays TF's float32 accumulation only where the exact sum is a multiple of 13 (the only place
where its truncation can differ); geometric ops are cached plans (:mod:`~rs3d.data.augment.plans`).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rs3d.data.augment.batch_kernels import tf_batch_op
from rs3d.data.augment.frame_groups import GROUP_ELEMENTS, by_frame_groups, float_to_uint8
from rs3d.data.augment.plans import cpu_plan, remap
from rs3d.data.augment.tf_spec import (
    F32,
    GRAY_WEIGHTS,
    SIGNED_OPS,
    SMOOTH_TAPS,
    TF_OPS,
    TO_FLOAT,
    TO_UINT8,
    cutout_box,
    tf_op_argument,
    tf_source_pixels,
)

__all__ = ["BATCHED_ON_ONE_CLIP", "tf_augment_op"]

# Ops whose batched torch kernel is as fast on one clip as a numpy twin was (see the module docstring).
BATCHED_ON_ONE_CLIP = frozenset({"AutoContrast", "SolarizeAdd", "Invert", "Posterize"})
_VALUES = np.arange(256, dtype=F32)


def tf_augment_op(video: torch.Tensor, op: str, magnitude: float, sign: float = 1.0, fill: int | None = 128,
                  translate_const: float = 100.0, box: tuple[int, ...] | None = None) -> torch.Tensor:
    """Apply one TF RandAugment op to a (T, 3, H, W) uint8 clip, as TF applies it to the (T, H, W, 3) clip.

    Args:
        video: the clip (not modified).
        op: one of :data:`~rs3d.data.augment.tf_spec.TF_OPS`.
        magnitude: strength on TF's 0-10 scale.
        sign: +1 or -1, the random sign TF gives Rotate/Shear/Translate.
        fill: out-of-frame value of geometric ops, or None to mirror the frame.
        translate_const: translation in pixels at magnitude 10.
        box: Cutout's (t0, t1, y0, y1, x0, x1); default: drawn with torch's global generator.
    """
    if op not in TF_OPS:
        raise ValueError(f"unknown TF RandAugment op {op!r}; expected one of {TF_OPS}")
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"TF RandAugment needs a (T, 3, H, W) uint8 clip, got {tuple(video.shape)} {video.dtype}")
    video = video.as_subclass(torch.Tensor).contiguous()
    if op in BATCHED_ON_ONE_CLIP:
        return tf_batch_op(video[None], op, magnitude, sign, fill, translate_const)[0]
    argument = tf_op_argument(op, magnitude, translate_const)
    if op in SIGNED_OPS:
        return _geometric(video, op, float(F32(argument) * F32(sign)), fill)
    if op == "Cutout":
        t0, t1, y0, y1, x0, x1 = box if box is not None else cutout_box(video.shape)
        out = video.clone()
        out[t0:t1, :, y0:y1, x0:x1] = 128
        return out
    if op == "Solarize":
        return _solarize(video, argument)
    if op == "Equalize":
        return _apply_tables(video, _equalize_table(video))
    if op == "Contrast":
        return _apply_tables(video, _contrast_table(video, argument))
    return by_frame_groups(video, lambda frames: _FRAMEWISE[op](frames, argument))


def _apply_tables(video: torch.Tensor, tables: np.ndarray) -> torch.Tensor:
    """Map values through one (1, 3, 256) table per channel or one (T, 3, 256) per frame and channel, a few frames
    at a time (the int32 indices stay in the CPU cache)."""
    tables = torch.from_numpy(np.array(np.broadcast_to(tables, (len(video), 3, 256)), order="C")).view(-1)
    out = torch.empty_like(video)
    step = max(1, GROUP_ELEMENTS // video[0].numel())
    for first in range(0, len(video), step):
        frames = video[first:first + step]
        offsets = torch.arange(256 * 3 * first, 256 * 3 * (first + len(frames)), 256, dtype=torch.int32)
        index = frames.int().add_(offsets.view(len(frames), 3, 1, 1))
        out[first:first + step] = tables.index_select(0, index.view(-1)).view(frames.shape)
    return out


def _equalize_table(video: torch.Tensor) -> np.ndarray:
    """Per channel over the whole clip: PIL's equalize as TF's integer formula writes it."""
    tables = np.empty((1, 3, 256), dtype=np.uint8)
    for c in range(3):
        hist = torch.bincount(video[:, c].reshape(-1), minlength=256).numpy()
        nonzero = hist[hist != 0]
        step = (nonzero.sum() - nonzero[-1]) // 255
        lut = (np.cumsum(hist) + step // 2) // max(step, 1)
        tables[0, c] = _VALUES if step == 0 else np.clip(np.concatenate([[0], lut[:-1]]), 0, 255)
    return tables


def _contrast_table(video: torch.Tensor, factor: float) -> np.ndarray:
    """``tf.image.adjust_contrast``: each frame's per-channel mean of the [0, 1] values, summed by TF's halving
    folds, then mean + factor * (x - mean) saturated back to uint8 (one table per frame and channel)."""
    means = np.empty((len(video) * 3, 1), dtype=F32)
    step = max(1, GROUP_ELEMENTS // video[0].numel())
    for first in range(0, len(video), step):
        frames = video[first:first + step]
        means[3 * first:3 * (first + len(frames))] = _fold_means(np.take(_VALUES * TO_FLOAT, frames.numpy()))
    adjusted = means + F32(factor) * (_VALUES * TO_FLOAT - means)
    return np.clip(adjusted * TO_UINT8, 0, 255).astype(np.uint8).reshape(len(video), 3, 256)


def _fold_means(values: np.ndarray) -> np.ndarray:
    """Mean of each (H, W) plane as AdjustContrastv2 sums it: the second half added onto the first, repeatedly."""
    planes = values.reshape(-1, values.shape[-2] * values.shape[-1])
    size = planes.shape[1]
    right = size // 2
    total = planes[:, size - right:] + planes[:, :right]
    if size - right > right:
        total = np.concatenate([total, planes[:, right:right + 1]], axis=1)
    remaining = size - right
    while remaining > 1:
        right = remaining // 2
        total[:, :right] += total[:, remaining - right:remaining]
        remaining -= right
    return total[:, :1] * (F32(1.0) / F32(size))


def _solarize(video: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert values >= the threshold, which TF converts to uint8 (256 -> 0: all inverted; 384 -> 128)."""
    threshold %= 256
    if threshold == 0:
        return torch.bitwise_not(video)
    pixels = video.numpy()
    flip = np.greater_equal(pixels, threshold).view(np.uint8)
    return torch.from_numpy(np.bitwise_xor(np.negative(flip, out=flip), pixels, out=flip))  # 255 ^ v == 255 - v


def _blend(degenerate: torch.Tensor, video: torch.Tensor, factor: float) -> torch.Tensor:
    """TF's ``blend(degenerate, image, factor)`` of float32 frames holding integers (degenerate may broadcast over
    channels): degenerate + factor * (image - degenerate), clipped unless 0 < factor < 1, truncated to uint8."""
    if factor == 0.0:
        return float_to_uint8(degenerate.expand_as(video).contiguous())
    temp = video.sub_(degenerate).mul_(float(F32(factor))).add_(degenerate)
    return float_to_uint8(temp if 0.0 < factor < 1.0 else temp.clamp_(0, 255))


def _brightness(video: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with black."""
    if factor == 1.0:
        return video
    return _blend(torch.zeros(1), video.float(), factor)


def _color(video: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with ``tf.image.rgb_to_grayscale``: values x (1/255) x weight, summed R + G + B, x 255.5, truncated."""
    if factor == 1.0:
        return video
    channels = video.float()
    gray = channels[:, 0].mul(float(TO_FLOAT)).mul_(GRAY_WEIGHTS[0])
    gray.add_(channels[:, 1].mul(float(TO_FLOAT)).mul_(GRAY_WEIGHTS[1]))
    gray.add_(channels[:, 2].mul(float(TO_FLOAT)).mul_(GRAY_WEIGHTS[2]))
    return _blend(gray.mul_(float(TO_UINT8)).trunc_().unsqueeze(1), channels, factor)


def _sharpness(video: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with PIL's SMOOTH filter as TF runs it (float32 conv3d, truncated; frame borders kept)."""
    height, width = video.shape[-2:]
    if factor == 1.0 or height <= 2 or width <= 2:
        return video
    x = video.to(torch.int16)
    rows = x[..., :-2, :] + x[..., 1:-1, :]
    rows += x[..., 2:, :]
    total = torch.ones_like(x)  # at each pixel: 3x3 sum + 4 x centre = 13 x the smoothed value (1 on borders)
    inner = total[..., 1:-1, 1:-1]
    torch.add(rows[..., :-2], rows[..., 1:-1], out=inner)
    inner += rows[..., 2:]
    inner.add_(x[..., 1:-1, 1:-1], alpha=4)
    total = total.numpy()
    smoothed = total // 13
    # TF's float32 sum of the nine products (fused multiply-adds, row by row) can land just below an exact
    # integer and truncate one lower: replay it where the exact value is an integer (1 in 13 pixels).
    inexact = np.flatnonzero(smoothed * 13 == total)
    if inexact.size:
        pixels = video.numpy().reshape(-1)
        acc = None
        for tap, offset in enumerate(dy * width + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)):
            product = pixels[inexact + offset] * SMOOTH_TAPS[tap == 4]  # exact in float64
            acc = product.astype(F32) if acc is None else (acc + product).astype(F32)  # one rounding: an fma
        smoothed.reshape(-1)[inexact] = acc
    result = torch.from_numpy(smoothed).float()
    result[..., 0, :], result[..., -1, :], result[..., 0], result[..., -1] = (
        video[..., 0, :], video[..., -1, :], video[..., 0], video[..., -1])
    return _blend(result, video.float(), factor)


_FRAMEWISE: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "Brightness": _brightness, "Color": _color, "Sharpness": _sharpness,
}


def _geometric(video: torch.Tensor, op: str, argument: float, fill: int | None) -> torch.Tensor:
    """Rotate (degrees), ShearX/Y (level) or TranslateX/Y (pixels) through a cached nearest-neighbour plan."""
    height, width = video.shape[-2:]
    plan = cpu_plan(("tf", op, argument, fill is None), height, width,
                    lambda: tf_source_pixels(op, argument, height, width, reflect=fill is None))
    fill_values = np.array([128 if fill is None else fill], dtype=np.uint8)
    if isinstance(plan, list):
        return remap(video, plan, fill_values)
    return by_frame_groups(video, lambda frames: remap(frames, plan, fill_values))
