"""Batched RandAugment kernels in torch alone, on any device: one op with one argument on (N, T, 3, H, W) uint8 clips.

:class:`~rs3d.data.device_inputs.BatchAugment` (``DATA.AUGMENT_ON_DEVICE``) groups a batch's clips by op and argument
and runs each group through :func:`tf_batch_op` (policies "tf" / "tf_reflect") or :func:`torchvision_batch_op`
(policy "torchvision"); the per-clip TF path also uses :func:`tf_batch_op` for the ops where it is as fast on one clip
as a numpy kernel (``tf_kernels.BATCHED_ON_ONE_CLIP``). Nothing here is tied to the CPU.

Same arithmetic as TF: every op replays the float32 operations of :mod:`~rs3d.data.augment.tf_spec` in the order
the numpy kernels do, one torch elementwise op per numpy op (never a fused ``add(alpha=)``/``addcmul``/``lerp``), so
on the CPU the result equals ``torch.stack([tf_augment_op(clip, ...) for clip in videos])`` bit for bit
(tests/data/augment/test_batch_kernels.py). Stats and tables are batched: AutoContrast's range and Equalize's
histogram per (clip, channel) over all frames, Contrast's mean per (clip, frame, channel) with TF's halving folds;
the tables are applied as one gather. Geometric ops of both policies are one gather through a cached plan
(:func:`~rs3d.data.augment.plans.gather_through_plan`).

On a GPU: the geometric gathers, Cutout, Invert, Posterize, Solarize, SolarizeAdd and Equalize (like the batch's
flips) are integer work or copies, exact on every device. Brightness, Color, Contrast, Sharpness and AutoContrast
use float32 (Sharpness's replay float64) arithmetic. Nothing here is a convolution, matmul or float reduction
(Contrast sums by explicit folds, Sharpness by shifted slices), so TF32 and reduction order cannot matter, and
separate elementwise kernels round once per op on CUDA too; yet a compiler may contract a multiply-add into an FMA
inside one kernel and a fast-math build would divide differently, so on a GPU these are only promised to within one
intensity level (tests/data/augment/test_batch_kernels.py: ``FLOAT_TOLERANCE``). Temporaries (int32 table indices,
Equalize's int64 histogram indices, Sharpness's float64 pixels) grow with N: the caller passes one op's group.
"""
from __future__ import annotations

import torch

from rs3d.data.augment.plans import gather_through_plan
from rs3d.data.augment.tf_spec import (
    F32,
    GRAY_WEIGHTS,
    SIGNED_OPS,
    SMOOTH_TAPS,
    TF_OPS,
    TO_FLOAT,
    TO_UINT8,
    tf_op_argument,
    tf_source_pixels,
)
from rs3d.data.augment.tv_spec import TORCHVISION_GEOMETRIC, torchvision_op, torchvision_source_pixels

__all__ = ["EXACT_OPS", "tf_batch_op", "torchvision_batch_op"]

EXACT_OPS = frozenset({"Invert", "Rotate", "Posterize", "Solarize", "ShearX", "ShearY", "TranslateX", "TranslateY",
                       "Cutout", "SolarizeAdd", "Equalize"})  # integer work or copies: equal on every device


def tf_batch_op(videos: torch.Tensor, op: str, magnitude: float, sign: float = 1.0, fill: int | None = 128,
                translate_const: float = 100.0, boxes: torch.Tensor | None = None) -> torch.Tensor:
    """Apply one TF RandAugment op with one argument to every clip of (N, T, 3, H, W) uint8 ``videos``.

    Args:
        videos: the clips, on any device (not modified).
        op: one of ``TF_OPS``.
        magnitude, sign, fill, translate_const: as for ``tf_kernels.tf_augment_op``.
        boxes: (N, 6) int64 Cutout boxes (t0, t1, y0, y1, x0, x1), non-negative, one per clip; required for Cutout.

    Returns:
        A new (N, T, 3, H, W) uint8 tensor on the device of ``videos``.
    """
    if op not in TF_OPS:
        raise ValueError(f"unknown TF RandAugment op {op!r}; expected one of {TF_OPS}")
    if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[2] != 3:
        raise ValueError(f"tf_batch_op needs (N, T, 3, H, W) uint8 clips, got {tuple(videos.shape)} {videos.dtype}")
    videos = videos.as_subclass(torch.Tensor).contiguous()
    if videos.numel() == 0:
        return videos.clone()
    argument = tf_op_argument(op, magnitude, translate_const)
    if op in SIGNED_OPS:
        return _geometric(videos, op, float(F32(argument) * F32(sign)), fill)
    if op == "Cutout":
        if boxes is None or tuple(boxes.shape) != (len(videos), 6):
            raise ValueError(f"Cutout needs (N, 6) boxes for N={len(videos)} clips")
        return _cutout(videos, boxes.to(videos.device, torch.int64))
    if op == "Invert":
        return torch.bitwise_not(videos)
    if op == "Posterize":  # TF clamps the shift of tf.bitwise to 0-7
        return torch.bitwise_and(videos, (0xFF << min(max(8 - argument, 0), 7)) & 0xFF)
    if op == "Solarize":  # TF converts the threshold to uint8 (256 -> 0: all inverted)
        threshold = argument % 256
        return torch.where(videos >= threshold, torch.bitwise_not(videos), videos)
    if op == "SolarizeAdd":
        values = torch.arange(256, dtype=torch.int32, device=videos.device)
        table = torch.where(values < 128, (values + argument).clamp(0, 255), values).to(torch.uint8)
        return table.index_select(0, videos.view(-1).int()).view(videos.shape)  # one table for all clips
    if op in ("AutoContrast", "Equalize", "Contrast"):
        tables = {"AutoContrast": _autocontrast_tables, "Equalize": _equalize_tables}.get(op, _contrast_tables)
        return _apply_tables(videos, tables(videos, argument))
    if argument == 1.0:  # Brightness, Color and Sharpness at factor 1 (magnitude 5) change nothing
        return videos.clone()
    if op == "Brightness":
        return _blend(torch.zeros(1, device=videos.device), videos.float(), argument)
    return _color(videos, argument) if op == "Color" else _sharpness(videos, argument)


def _cutout(videos: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Fill each clip's box with 128: one mask from per-clip (N, T), (N, H) and (N, W) ranges."""
    def inside(low: torch.Tensor, high: torch.Tensor, size: int) -> torch.Tensor:
        positions = torch.arange(size, device=videos.device)
        return (positions >= low[:, None]) & (positions < high[:, None])

    frames, rows, columns = (inside(boxes[:, 2 * i], boxes[:, 2 * i + 1], videos.shape[j])
                             for i, j in enumerate((1, 3, 4)))
    mask = frames[:, :, None, None, None] & rows[:, None, None, :, None] & columns[:, None, None, None, :]
    return videos.masked_fill(mask, 128)


# ---------------------------------------------------------------------------- one-value ops: lookup tables
def _apply_tables(videos: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Map values through (N, 1 or T, 3, 256) uint8 tables (per clip and channel, or per frame too): one gather."""
    n, depth = tables.shape[:2]
    offsets = torch.arange(0, n * depth * 3 * 256, 256, dtype=torch.int32, device=videos.device)
    index = videos.int().add_(offsets.view(n, depth, 3, 1, 1))
    return tables.reshape(-1).index_select(0, index.view(-1)).view(videos.shape)


def _float_values(device: torch.device) -> torch.Tensor:
    """The 256 uint8 values as float32 (exact)."""
    return torch.arange(256, dtype=torch.float32, device=device)


def _to_uint8(values: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """float32 -> uint8 as TF casts it (truncation), after clipping to [0, 255] where TF clips."""
    return (values.clamp(0, 255) if clip else values).to(torch.uint8)


def _autocontrast_tables(videos: torch.Tensor, argument: None) -> torch.Tensor:
    """Per clip and channel over all frames: stretch [lo, hi] to [0, 255] with TF's float32 scale and offset."""
    channels = videos.transpose(1, 2).reshape(len(videos), 3, 1, -1)
    lo, hi = channels.amin(dim=3).float(), channels.amax(dim=3).float()  # (N, 3, 1)
    scale = torch.full_like(hi, 255.0).div_(hi - lo)  # not 255.0 / tensor: torch computes that as 255 x 1/t
    values = _float_values(videos.device)
    stretched = _to_uint8(values * scale + lo.neg() * scale)  # hi == lo: inf/nan, replaced below
    return torch.where(hi > lo, stretched, values.to(torch.uint8)).unsqueeze(1)  # (N, 1, 3, 256)


def _equalize_tables(videos: torch.Tensor, argument: None) -> torch.Tensor:
    """Per clip and channel over all frames: PIL's equalize as TF's integer formula writes it."""
    rows = videos.transpose(1, 2).reshape(len(videos) * 3, -1).long()
    hist = torch.zeros(len(rows), 256, dtype=torch.int64, device=videos.device)
    hist.scatter_add_(1, rows, torch.ones(1, dtype=torch.int64, device=videos.device).expand_as(rows))
    values = torch.arange(256, device=videos.device)
    top = torch.where(hist > 0, values, 0).amax(dim=1, keepdim=True)  # the largest value present
    step = (hist.sum(dim=1, keepdim=True) - hist.gather(1, top)) // 255  # all pixels but the top value's, / 255
    lut = (hist.cumsum(dim=1) + step // 2) // step.clamp(min=1)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut[:, :-1]], dim=1).clamp_(0, 255)
    return torch.where(step == 0, values, lut).to(torch.uint8).view(len(videos), 1, 3, 256)


def _contrast_tables(videos: torch.Tensor, factor: float) -> torch.Tensor:
    """``tf.image.adjust_contrast``: each frame's per-channel mean of the [0, 1] values, summed by TF's halving
    folds, then mean + factor * (x - mean) saturated back to uint8 (one table per clip, frame and channel)."""
    unit = _float_values(videos.device) * float(TO_FLOAT)
    means = _fold_means(unit.index_select(0, videos.view(-1).int()).view(-1, videos.shape[-2] * videos.shape[-1]))
    adjusted = means + (unit - means) * float(F32(factor))
    return _to_uint8(adjusted * float(TO_UINT8)).view(*videos.shape[:3], 256)


def _fold_means(planes: torch.Tensor) -> torch.Tensor:
    """Mean of each row as AdjustContrastv2 sums it: the second half added onto the first, repeatedly
    (TF's AdjustContrastv2 on (rows, H*W) float32)."""
    size = planes.shape[1]
    right = size // 2
    total = planes[:, size - right:] + planes[:, :right]
    if size - right > right:
        total = torch.cat([total, planes[:, right:right + 1]], dim=1)
    remaining = size - right
    while remaining > 1:
        right = remaining // 2
        total[:, :right] += total[:, remaining - right:remaining]
        remaining -= right
    return total[:, :1] * float(F32(1.0) / F32(size))


# ---------------------------------------------------------------------------- float32 blends
def _blend(degenerate: torch.Tensor, videos: torch.Tensor, factor: float) -> torch.Tensor:
    """TF's ``blend(degenerate, image, factor)`` of float32 values holding integers (degenerate may broadcast over
    channels): degenerate + factor * (image - degenerate), clipped unless 0 < factor < 1, truncated to uint8."""
    if factor == 0.0:
        return _to_uint8(degenerate.expand_as(videos), clip=False)
    temp = videos.sub_(degenerate).mul_(float(F32(factor))).add_(degenerate)
    return _to_uint8(temp, clip=not 0.0 < factor < 1.0)


def _color(videos: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with ``tf.image.rgb_to_grayscale``: values x (1/255) x weight, summed R + G + B, x 255.5, truncated."""
    channels = videos.float()
    gray = channels[:, :, 0].mul(float(TO_FLOAT)).mul_(GRAY_WEIGHTS[0])
    gray.add_(channels[:, :, 1].mul(float(TO_FLOAT)).mul_(GRAY_WEIGHTS[1]))
    gray.add_(channels[:, :, 2].mul(float(TO_FLOAT)).mul_(GRAY_WEIGHTS[2]))
    return _blend(gray.mul_(float(TO_UINT8)).trunc_().unsqueeze(2), channels, factor)


def _sharpness(videos: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with PIL's SMOOTH filter as TF runs it (float32 conv3d, truncated; frame borders kept).

    Integer box sums give 13 x the smoothed value; where that is a multiple of 13, TF's float32 sum of the nine
    products (fused multiply-adds, row by row) can land just below the integer and truncate one lower, so there
    its accumulation is replayed in float64 (products exact, one rounding to float32 per tap), chosen by a
    ``torch.where`` over the whole tensor rather than an index (no host synchronisation)."""
    height, width = videos.shape[-2:]
    if height <= 2 or width <= 2:
        return videos.clone()
    x = videos.to(torch.int16)
    rows = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    total = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:] + 4 * x[..., 1:-1, 1:-1]  # inner pixels only
    pixels = videos.double()
    acc = None
    for tap, (dy, dx) in enumerate((dy, dx) for dy in (0, 1, 2) for dx in (0, 1, 2)):
        product = pixels[..., dy:height - 2 + dy, dx:width - 2 + dx] * SMOOTH_TAPS[tap == 4]  # exact in float64
        acc = product.float() if acc is None else (acc.double() + product).float()  # one rounding: an fma
    smoothed = videos.float()
    smoothed[..., 1:-1, 1:-1] = torch.where(total % 13 == 0, acc.trunc(), (total // 13).float())
    return _blend(smoothed, videos.float(), factor)


# ---------------------------------------------------------------------------- geometric ops
def _geometric(videos: torch.Tensor, op: str, argument: float, fill: int | None) -> torch.Tensor:
    """Rotate (degrees), ShearX/Y (level) or TranslateX/Y (pixels) through a cached gather plan (gray ``fill``
    outside the frame; mirrored when ``fill`` is None)."""
    height, width = videos.shape[-2:]
    return gather_through_plan(videos, ("tf", op, argument, fill is None),
                               lambda: tf_source_pixels(op, argument, height, width, reflect=fill is None),
                               128 if fill is None else fill)


# ---------------------------------------------------------------------------- policy "torchvision"
def torchvision_batch_op(videos: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """torchvision's RandAugment op at a signed magnitude (nearest interpolation, fill 0, as the workers' policy
    runs it) on (N, T, 3, H, W) uint8 clips on any device: geometric ops as one gather (exact everywhere), the
    others through torchvision's own kernels with every frame as an image."""
    if op in TORCHVISION_GEOMETRIC:
        height, width = videos.shape[-2:]
        return gather_through_plan(videos, ("torchvision", op, magnitude),
                                   lambda: torchvision_source_pixels(op, magnitude, height, width), 0)
    frames = videos.reshape(-1, *videos.shape[-3:])
    return torchvision_op(frames, op, magnitude).reshape(videos.shape)
