"""Bit-exact, fast RandAugment for uint8 video clips.

torchvision's ``v2.RandAugment`` processes a (T, 3, H, W) uint8 clip like T unrelated images: geometric ops push a
float copy of the whole clip through ``grid_sample`` and colour ops take slow uint8 <-> float paths, about 57 ms per
clip on one thread, which is more than half the decode time, although every random draw is shared by all frames.
``FastRandAugment`` keeps torchvision's random draws and its outputs bit for bit, but on uint8 tensors it runs each
nearest-neighbour geometric op as a cached plan (block copies for translations and ShearX, one byte gather otherwise)
whose source pixels come from running torchvision's own affine code once on a ramp of pixel numbers; it does the
colour ops with torchvision's float arithmetic in place plus numpy's fast float -> uint8 cast, Solarize as one uint8
compare, Equalize as per-plane lookup tables, and Sharpness with integer box sums; ops with clip-sized temporaries
work on a few frames at a time. Clips should be planar (T, 3, H, W): on interleaved pixels these kernels are 2-10x
slower. Float input, other interpolations, unusual shapes or fills go to torchvision unchanged.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode, RandAugment
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import _get_fill

__all__ = ["FastRandAugment", "adjust_sharpness_uint8", "source_pixels"]

_GEOMETRIC = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"})
_GROUPED_KERNELS = frozenset({"Brightness", "Color", "Contrast", "Sharpness", "AutoContrast", "Equalize"})
_NEAREST = ("nearest", InterpolationMode.NEAREST, 0)  # 0 is PIL.Image.NEAREST
_PLAN_CACHE: dict[tuple[int, int, str, float], list[tuple[int, ...]] | np.ndarray] = {}
_PLAN_CACHE_SIZE = 64
_RAMP = torch.arange(256, dtype=torch.uint8)
_TORCHVISION = RandAugment()  # torchvision's kernels, for the ops whose fast kernel does not apply
_GROUP_ELEMENTS = 640 * 1024  # 4 frames of 3x224x224: ~2.4 MB as float32


class FastRandAugment(RandAugment):
    """``v2.RandAugment`` with identical draws and outputs, several times faster on uint8 video.

    Besides ``forward``, the draws and their application are available apart (:meth:`draw`, :meth:`apply`), so
    loader workers can draw and the training device can apply (rs3d.data.batch_augment).
    """

    _draws: list[tuple[str, float]] | None = None  # set while draw() records instead of applying

    def draw(self, shape: tuple[int, ...]) -> list[tuple[str, float]]:
        """The (op, signed magnitude) list that ``forward`` would apply to an input of ``shape`` (..., H, W),
        drawn from torch's global generator by torchvision's own ``forward`` (same calls, same order)."""
        self._draws = []
        try:
            dummy = torch.empty(1, dtype=torch.uint8).expand(1, 3, *shape[-2:])
            super().forward(tv_tensors.Video(dummy))  # records through _apply_image_or_video_transform
            return self._draws
        finally:
            self._draws = None

    def apply(self, video: torch.Tensor, draws: list[tuple[str, float]]) -> torch.Tensor:
        """Apply ops from :meth:`draw` in order; with the same draws, the same result as ``forward``."""
        for transform_id, magnitude in draws:
            video = self._apply_image_or_video_transform(video, transform_id, magnitude, self.interpolation,
                                                         self._fill)
        return video

    def _apply_image_or_video_transform(self, image: Any, transform_id: str, magnitude: float,
                                        interpolation: Any, fill: Any) -> Any:
        """Run the fast uint8 kernel for ``transform_id`` where one applies, otherwise torchvision's."""
        if self._draws is not None:
            self._draws.append((transform_id, magnitude))
            return image
        out = None
        if _fast_path_applies(image):
            if transform_id in _GEOMETRIC:
                out = self._geometric(image, transform_id, magnitude, interpolation, _get_fill(fill, type(image)))
            elif transform_id in _COLOUR_KERNELS and magnitude >= -1.0:  # factor 1 + magnitude < 0: torchvision raises
                kernel, video = _COLOUR_KERNELS[transform_id], image.as_subclass(torch.Tensor)
                if transform_id in _GROUPED_KERNELS:
                    out = _by_frame_groups(video, lambda frames: kernel(frames, magnitude))
                else:
                    out = kernel(video, magnitude)
        if out is None:
            return super()._apply_image_or_video_transform(image, transform_id, magnitude, interpolation, fill)
        return tv_tensors.wrap(out, like=image) if isinstance(image, tv_tensors.TVTensor) else out

    def _geometric(self, video: torch.Tensor, transform_id: str, magnitude: float, interpolation: Any,
                   fill: Any) -> torch.Tensor | None:
        """Nearest-neighbour affine op through a cached plan: block copies (translations, ShearX) or a gather."""
        fill_values = _fill_values(fill, video.shape[-3])
        if interpolation not in _NEAREST or fill_values is None:
            return None
        height, width = video.shape[-2:]
        key = (height, width, transform_id, magnitude)
        if key not in _PLAN_CACHE:
            if len(_PLAN_CACHE) >= _PLAN_CACHE_SIZE:
                _PLAN_CACHE.pop(next(iter(_PLAN_CACHE)))
            _PLAN_CACHE[key] = _plan(source_pixels(transform_id, magnitude, height, width))
        plan = _PLAN_CACHE[key]
        if isinstance(plan, list):  # block copies: one pass over the clip
            return _remap(video.as_subclass(torch.Tensor).contiguous(), plan, fill_values)
        return _by_frame_groups(video.as_subclass(torch.Tensor).contiguous(), lambda x: _remap(x, plan, fill_values))


def source_pixels(transform_id: str, magnitude: float, height: int, width: int) -> np.ndarray:
    """(H, W) flat source pixel of every output pixel (-1 = outside) of a nearest-neighbour geometric op:
    torchvision's own kernel moves a ramp of pixel numbers (1-based, 0 = outside) exactly like any image."""
    ramp = torch.arange(1, height * width + 1, dtype=torch.float32).view(1, 1, height, width)
    moved = RandAugment._apply_image_or_video_transform(_TORCHVISION, ramp, transform_id, magnitude,
                                                       InterpolationMode.NEAREST, {"others": None})
    return moved.view(height, width).to(torch.int64).sub_(1).numpy()


def _plan(source: np.ndarray) -> list[tuple[int, ...]] | np.ndarray:
    """Blocks (y0, y1, x0, x1, source y0, source x0) that move by pure shifts, or else flat gather indices."""
    height, width = source.shape
    blocks = _row_blocks(source)
    if blocks is not None and len(blocks) <= height // 2:
        return blocks  # translations and ShearX (ShearY's narrow column blocks copy slower than a gather)
    return np.where(source < 0, height * width, source).reshape(-1)  # index H*W is the fill column


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


def _remap(video: torch.Tensor, plan: list[tuple[int, ...]] | np.ndarray, fill: np.ndarray) -> torch.Tensor:
    """Apply a plan from :func:`_plan` to every frame and channel; pixels mapped from outside get ``fill``."""
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


def _by_frame_groups(video: torch.Tensor, kernel: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run a kernel that treats frames independently on groups of about ``_GROUP_ELEMENTS`` values: its float,
    int16 and index temporaries then stay in the CPU cache and never need fresh pages from the OS (measured in a
    train worker: Sharpness, Color, Contrast and Brightness ~1.5-2x faster, Equalize 20 -> 9 ms per 32x224 clip)."""
    frames = video.reshape(-1, *video.shape[-3:])
    step = max(1, _GROUP_ELEMENTS // frames[0].numel())
    if step >= len(frames):
        return kernel(video)
    out = torch.empty(frames.shape, dtype=torch.uint8)
    for first in range(0, len(frames), step):
        out[first:first + step] = kernel(frames[first:first + step])
    return out.view(video.shape)


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


def _to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Float image already clamped to [0, 255] -> uint8, truncating like ``Tensor.to(torch.uint8)`` but faster."""
    return torch.from_numpy(image.numpy().astype(np.uint8))


def _grayscale(video: torch.Tensor) -> torch.Tensor:
    """torchvision's floored float luma, (..., 1, H, W), computed without its uint8 -> float promotions."""
    r, g, b = video.unbind(dim=-3)
    return r.float().mul_(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_().unsqueeze(-3)


def _brightness(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """torchvision's float arithmetic, in place."""
    return _to_uint8(video.float().mul_(1.0 + magnitude).clamp_(0, 255))


def _color(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """Saturation: torchvision's blend with the floored luma, in place."""
    ratio = 1.0 + magnitude
    return _to_uint8(video.float().mul_(ratio).add_(_grayscale(video), alpha=1.0 - ratio).clamp_(0, 255))


def _contrast(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """Contrast: torchvision's blend with each frame's mean luma (reduced over the same tensor), in place."""
    ratio = 1.0 + magnitude
    mean = torch.mean(_grayscale(video), dim=(-3, -2, -1), keepdim=True)
    return _to_uint8(video.float().mul_(ratio).add_(mean, alpha=1.0 - ratio).clamp_(0, 255))


def _autocontrast(video: torch.Tensor, magnitude: float) -> torch.Tensor:
    """AutoContrast: torchvision's float formula, with min and max taken on uint8."""
    minimum = video.amin(dim=(-2, -1), keepdim=True).float()
    maximum = video.amax(dim=(-2, -1), keepdim=True).float()
    equal = maximum == minimum
    inv_scale = maximum.sub_(minimum).mul_(1.0 / 255)
    minimum[equal] = 0.0
    inv_scale[equal] = 1.0
    return _to_uint8(video.float().sub_(minimum).div_(inv_scale).clamp_(0, 255))


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
