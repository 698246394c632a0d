"""TF Model Garden's RandAugment for uint8 video clips: the policy behind the ResNet-RS papers' "magnitude 10 / 15".

torchvision's ``v2.RandAugment`` shares the name, not the definition. TF (``official/vision/ops/augment.py``) draws
per layer one of 16 ops or identity (17 equally likely choices) and applies it with certainty; its magnitude runs on a
0-10 scale (``_MAX_LEVEL``; larger values extrapolate, 15 = 1.5x the "maximum"); it has Invert, Cutout and
SolarizeAdd; it translates by absolute pixels (magnitude / 10 x 100); its enhance factors are fixed,
magnitude / 10 x 1.8 + 0.1 (1.0 at magnitude 5); its geometric ops sample the nearest pixel.

:class:`TFRandAugment` reproduces what TF does to a (T, H, W, 3) clip, on rs3d's planar (T, 3, H, W) uint8 clips:
one op and argument for the whole clip; Equalize and AutoContrast take histograms / ranges over the whole clip;
Contrast is ``tf.image.adjust_contrast`` (each frame's per-channel mean); Cutout is TF's video cutout (a random
box over a random run of frames, magnitude unused) filled with 128. Out-of-frame pixels of Rotate/Shear/Translate
get gray 128 (``fill=128``, RandAugment as published and as Model Garden's wrap/unwrap intends), or mirror the frame
(``fill=None``: what Model Garden actually runs since Keras' transform defaults to ``fill_mode='reflect'``).
tests/data/test_randaugment_tf.py checks every op against outputs of TF itself
(tests/fixtures/tf/make_randaugment_fixture.py).

Kernels replay TF's float32 arithmetic operation by operation, so results are bit-identical, yet run about as fast
as rs3d's torchvision-policy kernels (tools/benchmark_randaugment.py): ops whose output depends on one input value
(AutoContrast, Equalize, Contrast, SolarizeAdd) are 256-entry tables built with TF's formula per clip, channel or
frame; Brightness, Color and Sharpness blend in float32 a few frames at a time; Sharpness smooths with integer box
sums and replays TF's float32 accumulation only where the exact sum is a multiple of 13 (the only place where its
truncation can differ); geometric ops are cached nearest-neighbour plans (block copies or one gather, as in
``randaugment.py``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from rs3d.data.randaugment import _GROUP_ELEMENTS, _by_frame_groups, _plan, _remap
from rs3d.data.randaugment import _to_uint8 as _float_to_uint8

__all__ = ["MAX_LEVEL", "TF_OPS", "TFRandAugment", "tf_augment_op", "tf_op_argument"]

MAX_LEVEL = 10.0  # TF's _MAX_LEVEL: magnitude 10 is the top of the published scale
TF_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
          "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")
_SIGNED = frozenset({"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"})
_F32 = np.float32
_VALUES = np.arange(256, dtype=_F32)
_TO_FLOAT = _F32(1.0 / 255)  # tf.image.convert_image_dtype uint8 -> float32
_TO_UINT8 = _F32(255.5)  # ... and back (then truncated)
_GRAY = [float(_F32(w)) for w in (0.2989, 0.5870, 0.1140)]  # tf.image.rgb_to_grayscale's weights
_SMOOTH = (float(_F32(1) / _F32(13)), float(_F32(5) / _F32(13)))  # PIL's SMOOTH kernel as TF builds it
_PLANS: dict[tuple, list[tuple[int, ...]] | np.ndarray] = {}
_PLAN_CACHE_SIZE = 64


def tf_op_argument(op: str, magnitude: float, translate_const: float = 100.0) -> float | int | None:
    """TF's ``level_to_arg`` for ``op`` at ``magnitude`` (before the random sign of Rotate/Shear/Translate).

    Args:
        op: one of :data:`TF_OPS`.
        magnitude: RandAugment magnitude on TF's 0-10 scale.
        translate_const: pixels of translation at magnitude 10.
    """
    level = magnitude / MAX_LEVEL
    arguments = {"Rotate": level * 30.0, "ShearX": level * 0.3, "ShearY": level * 0.3,
                 "TranslateX": level * float(translate_const), "TranslateY": level * float(translate_const),
                 "Posterize": int(level * 4), "Solarize": int(level * 256), "SolarizeAdd": int(level * 110)}
    if op in ("Color", "Contrast", "Brightness", "Sharpness"):
        return level * 1.8 + 0.1
    return arguments.get(op)  # None for AutoContrast, Equalize, Invert and Cutout (unused on clips)


class TFRandAugment:
    """RandAugment as TF Model Garden runs it on a video clip; see the module docstring.

    Random draws come from ``generator`` (default: torch's global generator, so that seeding torch per sample
    makes a clip's augmentation depend only on its seed): per layer the choice among 17, then for signed ops a
    fair sign, for Cutout its box, then the ``prob_to_apply`` coin if set.

    Args:
        num_layers: ops applied in sequence (TF's ``num_layers``).
        magnitude: strength on TF's 0-10 scale; values above 10 extrapolate.
        fill: value for out-of-frame pixels of geometric ops, or None to mirror the frame (tf-models-official).
        translate_const: translation in pixels at magnitude 10.
        prob_to_apply: apply each drawn op only with this probability (TF's option; None = always).
        generator: source of the random draws.
    """

    def __init__(self, num_layers: int = 2, magnitude: float = 10.0, fill: int | None = 128,
                 translate_const: float = 100.0, prob_to_apply: float | None = None,
                 generator: torch.Generator | None = None):
        if num_layers < 0 or magnitude < 0:
            raise ValueError(f"num_layers and magnitude must be >= 0, got {num_layers} and {magnitude}")
        if fill is not None and not 0 <= fill <= 255:
            raise ValueError(f"fill must be None or 0-255, got {fill}")
        self.num_layers, self.magnitude, self.fill = num_layers, float(magnitude), fill
        self.translate_const, self.prob_to_apply, self.generator = translate_const, prob_to_apply, generator

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_layers={self.num_layers}, magnitude={self.magnitude}, fill={self.fill}, "
                f"translate_const={self.translate_const}, prob_to_apply={self.prob_to_apply})")

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Augment a (T, 3, H, W) uint8 clip (plain tensor or ``tv_tensors.Video``; the type is kept)."""
        out = self.apply(video.as_subclass(torch.Tensor), self.draw(video.shape))
        return tv_tensors.wrap(out, like=video) if isinstance(video, tv_tensors.TVTensor) else out

    def draw(self, shape: tuple[int, ...]) -> list[tuple[str, float, tuple[int, ...] | None]]:
        """The (op, sign, Cutout box) of every op applied to a clip of ``shape`` (T, 3, H, W); identity choices
        and ops whose ``prob_to_apply`` coin failed are left out. Apart from :meth:`apply` so that loader
        workers can draw and the training device apply (rs3d.data.batch_augment)."""
        g, draws = self.generator, []
        for _ in range(self.num_layers):
            choice = int(torch.randint(len(TF_OPS) + 1, (1,), generator=g))
            if choice == len(TF_OPS):
                continue  # the 17th choice: identity
            op = TF_OPS[choice]
            sign = -1.0 if op in _SIGNED and float(torch.rand(1, generator=g)) < 0.5 else 1.0
            box = cutout_box(shape, g) if op == "Cutout" else None
            if self.prob_to_apply is not None and float(torch.rand(1, generator=g)) >= self.prob_to_apply:
                continue
            draws.append((op, sign, box))
        return draws

    def apply(self, video: torch.Tensor, draws: list[tuple[str, float, tuple[int, ...] | None]]) -> torch.Tensor:
        """Apply the ops from :meth:`draw` to a (T, 3, H, W) uint8 clip, in order."""
        for op, sign, box in draws:
            video = tf_augment_op(video, op, self.magnitude, sign, self.fill, self.translate_const, box)
        return video


def tf_augment_op(video: torch.Tensor, op: str, magnitude: float, sign: float = 1.0, fill: int | None = 128,
                  translate_const: float = 100.0, box: tuple[int, ...] | None = None) -> torch.Tensor:
    """Apply one TF RandAugment op to a (T, 3, H, W) uint8 clip, as TF applies it to the (T, H, W, 3) clip.

    Args:
        video: the clip (not modified).
        op: one of :data:`TF_OPS`.
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
    argument = tf_op_argument(op, magnitude, translate_const)
    if op in _SIGNED:
        return _geometric(video, op, float(_F32(argument) * _F32(sign)), fill)
    if op == "Cutout":
        t0, t1, y0, y1, x0, x1 = box if box is not None else cutout_box(video.shape)
        out = video.clone()
        out[t0:t1, :, y0:y1, x0:x1] = 128
        return out
    if op == "Invert":
        return torch.bitwise_not(video)
    if op == "Posterize":  # TF clamps the shift of tf.bitwise to 0-7
        return torch.bitwise_and(video, (0xFF << min(max(8 - argument, 0), 7)) & 0xFF)
    if op == "Solarize":
        return _solarize(video, argument)
    if op in _TABLES:
        return _apply_tables(video, _TABLES[op](video, argument))
    return _by_frame_groups(video, lambda frames: _FRAMEWISE[op](frames, argument))


def cutout_box(shape: tuple[int, ...], generator: torch.Generator | None = None) -> tuple[int, ...]:
    """TF's ``cutout_video`` box on a (T, 3, H, W) clip: a random centre, half-sizes drawn in [H/4, H/2) x
    [W/4, W/2) x [1, T/4) (at least 1, 1 and 1 wide ranges); returns (t0, t1, y0, y1, x0, x1)."""
    depth, height, width = shape[0], shape[-2], shape[-1]

    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high, (1,), generator=generator))

    cy, cx, ct = draw(0, height), draw(0, width), draw(0, depth)
    hy = draw(max(1, int(height / 4)), max(2, int(height / 2)))
    hx = draw(max(1, int(width / 4)), max(2, int(width / 2)))
    ht = draw(1, max(2, int(depth / 4)))
    return (max(0, ct - ht), min(depth, ct + ht), max(0, cy - hy), min(height, cy + hy),
            max(0, cx - hx), min(width, cx + hx))


# ---------------------------------------------------------------------------- one-value ops: lookup tables
def _apply_tables(video: torch.Tensor, tables: np.ndarray) -> torch.Tensor:
    """Map values through a (256,) table, one (1, 3, 256) per channel or one (T, 3, 256) per frame and channel,
    a few frames at a time (the int32 indices stay in the CPU cache)."""
    tables = torch.from_numpy(np.array(np.broadcast_to(tables, (len(video), 3, 256)), order="C")).view(-1)
    out = torch.empty_like(video)
    step = max(1, _GROUP_ELEMENTS // video[0].numel())
    for first in range(0, len(video), step):
        frames = video[first:first + step]
        offsets = torch.arange(256 * 3 * first, 256 * 3 * (first + len(frames)), 256, dtype=torch.int32)
        index = frames.int().add_(offsets.view(len(frames), 3, 1, 1))
        out[first:first + step] = tables.index_select(0, index.view(-1)).view(frames.shape)
    return out


def _cast(values: np.ndarray, clip: bool = True) -> np.ndarray:
    """float32 -> uint8 as TF casts it (truncation), after clipping to [0, 255] where TF clips."""
    return (np.clip(values, 0, 255) if clip else values).astype(np.uint8)


def _solarize_add_table(video: torch.Tensor, addition: int) -> np.ndarray:
    """Add ``addition`` (clipped to 0-255) to values below 128."""
    return np.where(_VALUES < 128, np.clip(_VALUES + addition, 0, 255), _VALUES).astype(np.uint8)


def _autocontrast_table(video: torch.Tensor, argument: None) -> np.ndarray:
    """Per channel over the whole clip: stretch [lo, hi] to [0, 255] with TF's float32 scale and offset."""
    channels = video.transpose(0, 1).reshape(3, -1)
    tables = np.empty((1, 3, 256), dtype=np.uint8)
    for c, (lo, hi) in enumerate(zip(channels.amin(dim=1).tolist(), channels.amax(dim=1).tolist())):
        scale = _F32(255.0) / (_F32(hi) - _F32(lo)) if hi > lo else None
        tables[0, c] = _VALUES if scale is None else _cast(_VALUES * scale + (-_F32(lo)) * scale)
    return tables


def _equalize_table(video: torch.Tensor, argument: None) -> np.ndarray:
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
    means = np.empty((len(video) * 3, 1), dtype=_F32)
    step = max(1, _GROUP_ELEMENTS // video[0].numel())
    for first in range(0, len(video), step):
        frames = video[first:first + step]
        means[3 * first:3 * (first + len(frames))] = _fold_means(np.take(_VALUES * _TO_FLOAT, frames.numpy()))
    adjusted = means + _F32(factor) * (_VALUES * _TO_FLOAT - means)
    return _cast(adjusted * _TO_UINT8).reshape(len(video), 3, 256)


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
    return total[:, :1] * (_F32(1.0) / _F32(size))


_TABLES: dict[str, Callable[[torch.Tensor, Any], np.ndarray]] = {
    "SolarizeAdd": _solarize_add_table, "AutoContrast": _autocontrast_table, "Equalize": _equalize_table,
    "Contrast": _contrast_table,
}


def _solarize(video: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert values >= the threshold, which TF converts to uint8 (256 -> 0: all inverted; 384 -> 128)."""
    threshold %= 256
    if threshold == 0:
        return torch.bitwise_not(video)
    pixels = video.numpy()
    flip = np.greater_equal(pixels, threshold).view(np.uint8)
    return torch.from_numpy(np.bitwise_xor(np.negative(flip, out=flip), pixels, out=flip))  # 255 ^ v == 255 - v


# ---------------------------------------------------------------------------- frame by frame: float32 blends
def _blend(degenerate: torch.Tensor, video: torch.Tensor, factor: float) -> torch.Tensor:
    """TF's ``blend(degenerate, image, factor)`` of float32 frames holding integers (degenerate may broadcast over
    channels): degenerate + factor * (image - degenerate), clipped unless 0 < factor < 1, truncated to uint8."""
    if factor == 0.0:
        return _float_to_uint8(degenerate.expand_as(video).contiguous())
    temp = video.sub_(degenerate).mul_(float(_F32(factor))).add_(degenerate)
    return _float_to_uint8(temp if 0.0 < factor < 1.0 else temp.clamp_(0, 255))


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
    gray = channels[:, 0].mul(float(_TO_FLOAT)).mul_(_GRAY[0])
    gray.add_(channels[:, 1].mul(float(_TO_FLOAT)).mul_(_GRAY[1]))
    gray.add_(channels[:, 2].mul(float(_TO_FLOAT)).mul_(_GRAY[2]))
    return _blend(gray.mul_(float(_TO_UINT8)).trunc_().unsqueeze(1), channels, factor)


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
            product = pixels[inexact + offset] * _SMOOTH[tap == 4]  # exact in float64
            acc = product.astype(_F32) if acc is None else (acc + product).astype(_F32)  # one rounding: an fma
        smoothed.reshape(-1)[inexact] = acc
    result = torch.from_numpy(smoothed).float()
    result[..., 0, :], result[..., -1, :], result[..., 0], result[..., -1] = (
        video[..., 0, :], video[..., -1, :], video[..., 0], video[..., -1])
    return _blend(result, video.float(), factor)


_FRAMEWISE: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "Brightness": _brightness, "Color": _color, "Sharpness": _sharpness,
}


# ---------------------------------------------------------------------------- geometric ops
def _geometric(video: torch.Tensor, op: str, argument: float, fill: int | None) -> torch.Tensor:
    """Rotate (degrees), ShearX/Y (level) or TranslateX/Y (pixels) through a cached nearest-neighbour plan."""
    height, width = video.shape[-2:]
    key = (height, width, op, argument, fill is None)
    if key not in _PLANS:
        if len(_PLANS) >= _PLAN_CACHE_SIZE:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = _plan(_source_pixels(op, argument, height, width, reflect=fill is None))
    fill_values = np.array([128 if fill is None else fill], dtype=np.uint8)
    plan = _PLANS[key]
    if isinstance(plan, list):
        return _remap(video, plan, fill_values)
    return _by_frame_groups(video, lambda frames: _remap(frames, plan, fill_values))


def _source_pixels(op: str, argument: float, height: int, width: int, reflect: bool) -> np.ndarray:
    """(H, W) flat source pixel of every output pixel (-1 = outside), as ImageProjectiveTransformV3 computes it:
    the float32 transform of Model Garden's op, fill mode, then rounding half away from zero."""
    a = _F32(argument)
    if op == "Rotate":
        radians = a * _F32(math.pi / 180.0)
        # TF's float32 sin/cos can differ from these by one ulp at some angles: a pixel or so may move.
        cos, sin = _F32(math.cos(radians)), _F32(math.sin(radians))
        w1, h1 = _F32(width - 1), _F32(height - 1)
        matrix = (cos, -sin, (w1 - (cos * w1 - sin * h1)) / _F32(2), sin, cos, (h1 - (sin * w1 + cos * h1)) / _F32(2))
    else:
        matrix = {"ShearX": (1, a, 0, 0, 1, 0), "ShearY": (1, 0, 0, a, 1, 0),
                  "TranslateX": (1, 0, a, 0, 1, 0), "TranslateY": (1, 0, 0, 0, 1, a)}[op]
    t = [_F32(v) for v in matrix]
    y, x = (v.astype(_F32) for v in np.mgrid[0:height, 0:width])
    source_x, source_y = (t[0] * x + t[1] * y) + t[2], (t[3] * x + t[4] * y) + t[5]
    if reflect:
        source_x, source_y = _reflect(source_x, width), _reflect(source_y, height)
    sx, sy = _round_half_away(source_x), _round_half_away(source_y)
    inside = (sx >= 0) & (sx < width) & (sy >= 0) & (sy < height)
    return np.where(inside, sy * width + sx, -1)


def _reflect(coord: np.ndarray, size: int) -> np.ndarray:
    """TF's MapCoordinate<FILL_REFLECT> in float32: (d c b a | a b c d | d c b a), then clamped."""
    if size <= 1:
        return np.zeros_like(coord)
    period = 2 * size
    out = coord.copy()
    low = coord < 0
    c = coord[low]
    c = _F32(period) * np.trunc(-c / _F32(period)) + c
    out[low] = np.where(c < -size, c + _F32(period), -c - _F32(1))
    high = coord > size - 1
    c = coord[high]
    c = c - _F32(period) * np.trunc(c / _F32(period))
    out[high] = np.where(c >= size, (_F32(period) - c) - _F32(1), c)
    return np.clip(out, _F32(0), _F32(size - 1))


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """``std::round`` to int64."""
    whole = np.trunc(values)
    fraction = values - whole
    return (whole + (fraction >= 0.5) - (fraction <= -0.5)).astype(np.int64)
