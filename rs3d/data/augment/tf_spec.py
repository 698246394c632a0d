"""TF Model Garden's RandAugment as a definition: its ops, their arguments, Cutout's box and the geometry of its
nearest-neighbour transforms, in TF's float32 arithmetic. Both kernel sets replay it: the per-clip numpy kernels
(:mod:`~rs3d.data.augment.tf_kernels`) and the batched torch kernels (:mod:`~rs3d.data.augment.batch_kernels`).

TF (``official/vision/ops/augment.py``) draws per layer one of 16 ops or identity (17 equally likely choices) and
applies it with certainty; its magnitude runs on a 0-10 scale (``_MAX_LEVEL``; larger values extrapolate, 15 = 1.5x
the "maximum"); it translates by absolute pixels (magnitude / 10 x 100); its enhance factors are
magnitude / 10 x 1.8 + 0.1 (1.0 at magnitude 5); its geometric ops sample the nearest pixel.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["F32", "GRAY_WEIGHTS", "MAX_LEVEL", "SIGNED_OPS", "SMOOTH_TAPS", "TF_OPS", "TO_FLOAT", "TO_UINT8",
           "cutout_box", "tf_op_argument", "tf_source_pixels"]

MAX_LEVEL = 10.0  # TF's _MAX_LEVEL: magnitude 10 is the top of the published scale
TF_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
          "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")
SIGNED_OPS = frozenset({"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"})  # TF draws a random sign
F32 = np.float32
TO_FLOAT = F32(1.0 / 255)  # tf.image.convert_image_dtype uint8 -> float32
TO_UINT8 = F32(255.5)  # ... and back (then truncated)
GRAY_WEIGHTS = tuple(float(F32(w)) for w in (0.2989, 0.5870, 0.1140))  # tf.image.rgb_to_grayscale's weights
SMOOTH_TAPS = (float(F32(1) / F32(13)), float(F32(5) / F32(13)))  # PIL's SMOOTH kernel as TF builds it: edge, centre


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


def tf_source_pixels(op: str, argument: float, height: int, width: int, reflect: bool) -> np.ndarray:
    """(H, W) flat source pixel of every output pixel (-1 = outside), as ImageProjectiveTransformV3 computes it:
    the float32 transform of Model Garden's op, fill mode (mirrored with ``reflect``), then rounding half away
    from zero."""
    a = F32(argument)
    if op == "Rotate":
        radians = a * F32(math.pi / 180.0)
        # TF's float32 sin/cos can differ from these by one ulp at some angles: a pixel or so may move.
        cos, sin = F32(math.cos(radians)), F32(math.sin(radians))
        w1, h1 = F32(width - 1), F32(height - 1)
        matrix = (cos, -sin, (w1 - (cos * w1 - sin * h1)) / F32(2), sin, cos, (h1 - (sin * w1 + cos * h1)) / F32(2))
    else:
        matrix = {"ShearX": (1, a, 0, 0, 1, 0), "ShearY": (1, 0, 0, a, 1, 0),
                  "TranslateX": (1, 0, a, 0, 1, 0), "TranslateY": (1, 0, 0, 0, 1, a)}[op]
    t = [F32(v) for v in matrix]
    y, x = (v.astype(F32) for v in np.mgrid[0:height, 0:width])
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
    c = F32(period) * np.trunc(-c / F32(period)) + c
    out[low] = np.where(c < -size, c + F32(period), -c - F32(1))
    high = coord > size - 1
    c = coord[high]
    c = c - F32(period) * np.trunc(c / F32(period))
    out[high] = np.where(c >= size, (F32(period) - c) - F32(1), c)
    return np.clip(out, F32(0), F32(size - 1))


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """``std::round`` to int64."""
    whole = np.trunc(values)
    fraction = values - whole
    return (whole + (fraction >= 0.5) - (fraction <= -0.5)).astype(np.int64)
