"""Per-clip uint8 kernels of torchvision's RandAugment ops (policy "torchvision", on loader workers), bit-identical
to torchvision's own and several times faster on video.

torchvision processes a (T, 3, H, W) uint8 clip like T unrelated images: geometric ops push a float copy of the
whole clip through ``grid_sample`` and colour ops take slow uint8 <-> float paths, about 57 ms per clip on one
thread. Here each nearest-neighbour geometric op runs as a cached plan (:mod:`~rs3d.data.augment.plans`: block copies
for translations and ShearX, one byte gather otherwise) whose source pixels come from torchvision's own affine code;
the colour ops use torchvision's float arithmetic in place plus numpy's fast float -> uint8 cast, Solarize one uint8
compare, Equalize per-plane lookup tables, Sharpness integer box sums; ops with clip-sized temporaries work on a few
frames at a time. Clips should be planar (T, 3, H, W): on interleaved pixels these kernels are 2-10x slower.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from rs3d.data.augment.frame_groups import by_frame_groups, float_to_uint8
from rs3d.data.augment.plans import cpu_plan, remap
from rs3d.data.augment.tv_spec import TORCHVISION_GEOMETRIC, torchvision_source_pixels

__all__ = ["adjust_sharpness_uint8", "fast_torchvision_op"]

_GROUPED_KERNELS = frozenset({"Brightness", "Color", "Contrast", "Sharpness", "AutoContrast", "Equalize"})
_NEAREST = ("nearest", InterpolationMode.NEAREST, 0)  # 0 is PIL.Image.NEAREST
_RAMP = torch.arange(256, dtype=torch.uint8)


def fast_torchvision_op(image: Any, op: str, magnitude: float, interpolation: Any, fill: Any) -> torch.Tensor | None:
    """torchvision's op on a CPU uint8 (..., 3, H, W) tensor as a plain tensor, or None where no fast kernel
    applies (float input, other interpolations, unusual shapes or fills: the caller runs torchvision's).

    Args:
        image: the clip or image (a tensor or tv_tensor; not modified).
        op, magnitude: a torchvision RandAugment op and its signed magnitude.
        interpolation: the transform's interpolation (only nearest has a fast kernel).
        fill: the fill for ``image``'s type (``HookedRandAugment.fill_for``).
    """
    if not _fast_path_applies(image):
        return None
    video = image.as_subclass(torch.Tensor)
    if op in TORCHVISION_GEOMETRIC:
        return _geometric(video, op, magnitude, interpolation, fill)
    if op in _COLOUR_KERNELS and magnitude >= -1.0:  # factor 1 + magnitude < 0: torchvision raises
        kernel = _COLOUR_KERNELS[op]
        if op in _GROUPED_KERNELS:
            return by_frame_groups(video, lambda frames: kernel(frames, magnitude))
        return kernel(video, magnitude)
    return None


def _geometric(video: torch.Tensor, op: str, magnitude: float, interpolation: Any, fill: Any) -> torch.Tensor | None:
    """Nearest-neighbour affine op through a cached plan: block copies (translations, ShearX) or a gather."""
    fill_values = _fill_values(fill, video.shape[-3])
    if interpolation not in _NEAREST or fill_values is None:
        return None
    height, width = video.shape[-2:]
    plan = cpu_plan(("torchvision", op, magnitude), height, width,
                    lambda: torchvision_source_pixels(op, magnitude, height, width))
    if isinstance(plan, list):  # block copies: one pass over the clip
        return remap(video.contiguous(), plan, fill_values)
    return by_frame_groups(video.contiguous(), lambda x: remap(x, plan, fill_values))


def _fast_path_applies(image: Any) -> bool:
    """True for a non-empty CPU uint8 tensor shaped (..., 3, H, W) with frames small enough for float indices."""
    return (isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.device.type == "cpu"
            and image.ndim >= 3 and image.shape[-3] == 3 and 0 < image.numel()
            and image.shape[-2] * image.shape[-1] < 2 ** 24)


def _fill_values(fill: Any, channels: int) -> np.ndarray | None:
    """The uint8 fill per channel exactly as torchvision rounds it (float32, half-to-even), or None if unsupported."""
    values = [0.0] if fill is None else [fill] if isinstance(fill, (int, float)) else list(fill)
    if len(values) not in (1, channels):
        return None
    rounded = torch.tensor([float(v) for v in values], dtype=torch.float32).round_()
    if not bool(((rounded >= 0) & (rounded <= 255)).all()):
        return None
    return rounded.to(torch.uint8).numpy()


def _grayscale(video: torch.Tensor) -> torch.Tensor:
    """torchvision's floored float luma, (..., 1, H, W), computed without its uint8 -> float promotions."""
    r, g, b = video.unbind(dim=-3)
    return r.float().mul_(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_().unsqueeze(-3)


def _brightness(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """torchvision's float arithmetic, in place."""
    return float_to_uint8(video.float().mul_(1.0 + magnitude).clamp_(0, 255))


def _color(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """Saturation: torchvision's blend with the floored luma, in place."""
    ratio = 1.0 + magnitude
    return float_to_uint8(video.float().mul_(ratio).add_(_grayscale(video), alpha=1.0 - ratio).clamp_(0, 255))


def _contrast(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """Contrast: torchvision's blend with each frame's mean luma (reduced over the same tensor), in place."""
    ratio = 1.0 + magnitude
    mean = torch.mean(_grayscale(video), dim=(-3, -2, -1), keepdim=True)
    return float_to_uint8(video.float().mul_(ratio).add_(mean, alpha=1.0 - ratio).clamp_(0, 255))


def _autocontrast(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """AutoContrast: torchvision's float formula, with min and max taken on uint8."""
    minimum = video.amin(dim=(-2, -1), keepdim=True).float()
    maximum = video.amax(dim=(-2, -1), keepdim=True).float()
    equal = maximum == minimum
    inv_scale = maximum.sub_(minimum).mul_(1.0 / 255)
    minimum[equal] = 0.0
    inv_scale[equal] = 1.0
    return float_to_uint8(video.float().sub_(minimum).div_(inv_scale).clamp_(0, 255))


def _solarize(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """Invert values >= the threshold, found by torchvision's own kernel on the 256 values; numpy's uint8 compare."""
    first = int((F.solarize_image(_RAMP, 255.0 * magnitude) == _RAMP).sum())  # values below it are kept
    if first == 256:
        return video.clone()
    pixels = video.numpy()
    flip = np.greater_equal(pixels, first).view(np.uint8)
    return torch.from_numpy(np.bitwise_xor(np.negative(flip, out=flip), pixels, out=flip))  # 255 ^ v == ~v


def _equalize(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """Equalize as one LUT per frame and channel, from torchvision's (PIL's) integer histogram formula."""
    planes = video.contiguous().view(-1, video.shape[-2] * video.shape[-1])
    hist = torch.stack([torch.bincount(plane, minlength=256) for plane in planes])
    cum_hist = hist.cumsum(dim=-1)
    last = cum_hist.argmax(dim=-1, keepdim=True)
    step = (planes.shape[-1] - hist.gather(-1, last)).div_(255, rounding_mode="floor")
    luts = torch.zeros_like(hist)
    luts[:, 1:] = (cum_hist[:, :-1] + step // 2).div_(step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    luts = torch.where(step != 0, luts, _RAMP.long()).to(torch.uint8)  # planes with step 0 stay unchanged
    index = planes.int().add_(torch.arange(0, 256 * len(planes), 256, dtype=torch.int32).view(-1, 1))
    return luts.view(-1).index_select(0, index.view(-1)).view(video.shape)


def _sharpness(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """Sharpness through :func:`adjust_sharpness_uint8`."""
    return adjust_sharpness_uint8(video, 1.0 + magnitude)


def adjust_sharpness_uint8(video: torch.Tensor, factor: float) -> torch.Tensor:
    """Same result as ``F.adjust_sharpness`` on uint8 (separable integer box sum instead of a float conv)."""
    if video.shape[-1] <= 2 or video.shape[-2] <= 2:
        return video
    x = video.to(torch.int16)
    rows = x[..., :-2, :] + x[..., 1:-1, :]
    rows += x[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1]
    box += rows[..., 2:]
    centre = x[..., 1:-1, 1:-1]
    # (3x3 sum + 4 * centre) / 13 is never within 1/26 of a .5, so rounding it matches torchvision's float conv.
    blurred = box.add_(centre, alpha=4).float().div_(13.0).round_()
    inner = centre.float()
    inner.add_(blurred.sub_(inner), alpha=1.0 - factor).clamp_(0, 255)
    out = video.clone()
    np.copyto(out.numpy()[..., 1:-1, 1:-1], inner.numpy(), casting="unsafe")  # float -> uint8 truncates
    return out


_COLOUR_KERNELS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "Brightness": _brightness, "Color": _color, "Contrast": _contrast, "Sharpness": _sharpness,
    "Solarize": _solarize, "AutoContrast": _autocontrast, "Equalize": _equalize,
}
