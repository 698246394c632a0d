"""Spatial augmentation of whole clips with torchvision.transforms.v2 on ``tv_tensors.Video``.

Crops are planned *before* decoding: each clip's crop box (in displayed-frame coordinates) tells the
decoder how far it may shrink the frames while it decodes, so a random-resized crop of a large video
becomes a decode-time resize plus a plain crop, and full-resolution frames never reach Python. Mild
shrinks (the usual case on 256p videos) decode at the stored size and resize only the crop, which is cheaper.
Every random draw (box, flip, RandAugment op and magnitude) is shared by all frames of a clip. RandAugment comes in
two definitions (``randaug_policy``, :mod:`rs3d.data.augment`): TF Model Garden's, the one the ResNet-RS papers'
magnitudes refer to, or torchvision's ``v2.RandAugment``. The draws are made apart from their application
(:mod:`rs3d.data.draws`), so that under ``DATA.AUGMENT_ON_DEVICE`` workers only crop and draw, and the device
(:mod:`rs3d.data.device_inputs`) resizes with :func:`resize_crop` and applies them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from rs3d.data.augment.policies import RANDAUGMENT_POLICIES, TFRandAugment, build_randaugment
from rs3d.data.draws import AugmentDraws, encode_draws

__all__ = ["RANDAUGMENT_POLICIES", "TRAIN_CROP_MODES", "Box", "TestClipTransform", "TrainClipTransform",
           "crop_region", "cut_clip", "decode_scale", "frames_to_tensor", "planar", "resize_crop", "scaled_size"]

TRAIN_CROP_MODES = ("rrc", "jitter")
DECODE_RESIZE_MAX_AREA = 0.4  # shrink at decode time only to <= 40% of the stored pixels (see scaled_size)


@dataclass(frozen=True)
class Box:
    """A crop rectangle in pixels: top, left, height, width."""

    top: float
    left: float
    height: float
    width: float


def decode_scale(boxes: list[Box], crop_size: int) -> tuple[float, float]:
    """Largest shrink factors (y, x) <= 1 that still leave every box at least ``crop_size`` pixels."""
    sy = min(1.0, max(crop_size / b.height for b in boxes))
    sx = min(1.0, max(crop_size / b.width for b in boxes))
    return sy, sx


def resize_crop(clip: torch.Tensor, crop_size: int) -> torch.Tensor:
    """A (T, 3, h, w) crop resized to crop_size x crop_size (antialiased; none when it already has that size): the
    workers' last step on the worker path, the device's first under DATA.AUGMENT_ON_DEVICE."""
    if tuple(clip.shape[-2:]) != (crop_size, crop_size):
        clip = F.resize(clip, [crop_size, crop_size], antialias=True)
    return clip


def cut_clip(frames: torch.Tensor, box: Box, scale: tuple[float, float], crop_size: int) -> torch.Tensor:
    """Crop ``box`` (displayed coordinates) out of frames decoded at ``scale`` and resize to crop_size."""
    return resize_crop(crop_region(frames, box, scale, crop_size), crop_size)


def crop_region(frames: torch.Tensor, box: Box, scale: tuple[float, float], crop_size: int) -> torch.Tensor:
    """The pixels of ``box`` (displayed coordinates, snapped to whole pixels) in frames decoded at ``scale``: a view."""
    height, width = frames.shape[-2:]
    h = _snap(box.height * scale[0], crop_size, height)
    w = _snap(box.width * scale[1], crop_size, width)
    top = min(max(int(round(box.top * scale[0])), 0), height - h)
    left = min(max(int(round(box.left * scale[1])), 0), width - w)
    return frames[..., top:top + h, left:left + w]


def _snap(length: float, crop_size: int, limit: int) -> int:
    """Round a box side; within a pixel of the crop size it becomes exactly the crop size (no resize)."""
    size = crop_size if abs(length - crop_size) < 1.0 else int(round(length))
    return max(1, min(size, limit))


class TrainClipTransform:
    """One random clip box per clip, then flip and RandAugment, all frames sharing each draw.

    ``randaug_policy`` picks the RandAugment definition (:data:`RANDAUGMENT_POLICIES`) and with it the scale of
    ``randaug_magnitude``: 0-10 (above 10 extrapolates) for "tf" / "tf_reflect", a bin 0-30 for "torchvision".

    Args:
        crop_size: side of the square output clip.
        mode: ``"rrc"`` random-resized crop (``area`` fraction of the frame, ``aspect`` ratio range) or
            ``"jitter"`` (short side drawn from ``jitter`` then a random ``crop_size`` square).
        area, aspect: random-resized crop ranges (TF: 0.08-1 and 0.5-2).
        jitter: short-side range of the ``"jitter"`` mode.
        flip_prob: probability of a horizontal flip.
        randaug_layers: RandAugment ops per clip (0: none).
        randaug_magnitude: RandAugment strength on the policy's scale.
        randaug_policy: ``"tf"``, ``"tf_reflect"`` or ``"torchvision"``.
    """

    def __init__(self, crop_size: int, mode: str = "rrc", area: tuple[float, float] = (0.08, 1.0),
                 aspect: tuple[float, float] = (0.5, 2.0), jitter: tuple[int, int] = (256, 320),
                 flip_prob: float = 0.5, randaug_layers: int = 0, randaug_magnitude: float = 10,
                 randaug_policy: str = "torchvision"):
        if mode not in TRAIN_CROP_MODES:
            raise ValueError(f"train crop mode must be one of {TRAIN_CROP_MODES}, got {mode!r}")
        self.crop_size, self.mode, self.jitter, self.flip_prob = crop_size, mode, jitter, flip_prob
        self.randaug_layers, self.randaug_policy = randaug_layers, randaug_policy
        self._rrc = v2.RandomResizedCrop(crop_size, scale=area, ratio=aspect)
        self._randaugment = build_randaugment(randaug_layers, randaug_magnitude, randaug_policy)

    def sample_box(self, height: int, width: int) -> Box:
        """Draw the crop box of one clip in displayed-frame coordinates."""
        if self.mode == "rrc":
            dummy = tv_tensors.Video(torch.empty(1, dtype=torch.uint8).expand(1, 3, height, width))
            p = self._rrc.make_params([dummy])
            return Box(p["top"], p["left"], p["height"], p["width"])
        short = int(torch.randint(self.jitter[0], self.jitter[1] + 1, (1,)))
        side = self.crop_size * min(height, width) / short  # the crop, seen at the source resolution
        side = min(side, height, width)
        top = float(torch.rand(1)) * (height - side)
        left = float(torch.rand(1)) * (width - side)
        return Box(top, left, side, side)

    def __call__(self, frames: torch.Tensor, box: Box, scale: tuple[float, float]) -> torch.Tensor:
        """(T, 3, H, W) uint8 frames decoded at ``scale`` -> augmented (3, T, crop, crop) uint8 clip.

        The crop is resized in the decoder's interleaved layout (torch's fast uint8 path) and then made planar
        once: RandAugment's kernels run 2-10x faster on contiguous planes than on interleaved pixels.
        """
        clip = planar(cut_clip(frames, box, scale, self.crop_size))
        return self.apply(clip, self.draw(len(frames))).permute(1, 0, 2, 3).contiguous()

    def cut(self, frames: torch.Tensor, box: Box, scale: tuple[float, float]) -> torch.Tensor:
        """The pixels of ``box``, not yet resized or augmented, as a compact (T, h, w, 3) uint8 copy: what workers
        return under DATA.AUGMENT_ON_DEVICE (the decoder's interleaved layout, so no planar copy here; the resize to
        the crop size runs on the device, :func:`resize_crop`)."""
        return crop_region(frames, box, scale, self.crop_size).permute(0, 2, 3, 1).contiguous()

    def draw(self, num_frames: int) -> AugmentDraws:
        """Every random draw of one clip after its box, in the order the worker path makes them: the flip (as
        ``v2.RandomHorizontalFlip``), then RandAugment's ops."""
        flip = self.flip_prob > 0 and bool(torch.rand(1) < self.flip_prob)
        if self._randaugment is None:
            return AugmentDraws(flip)
        shape = (num_frames, 3, self.crop_size, self.crop_size)
        if isinstance(self._randaugment, TFRandAugment):
            return AugmentDraws(flip, tuple(self._randaugment.draw(shape)))
        return AugmentDraws(flip, tuple((op, magnitude, None) for op, magnitude in self._randaugment.draw(shape)))

    def apply(self, clip: torch.Tensor, draws: AugmentDraws) -> torch.Tensor:
        """Flip and RandAugment a planar (T, 3, crop, crop) uint8 clip as ``draws`` say (CPU kernels)."""
        if draws.flip:
            clip = clip.flip(-1)
        if isinstance(self._randaugment, TFRandAugment):
            return self._randaugment.apply(clip, list(draws.ops))
        if self._randaugment is not None:
            return self._randaugment.apply(clip, [(op, value) for op, value, _ in draws.ops])
        return clip

    def encode(self, draws: list[AugmentDraws]) -> dict[str, torch.Tensor]:
        """The draws of a video's clips as batch tensors (see :func:`rs3d.data.draws.encode_draws`)."""
        return encode_draws(draws, self.randaug_policy, self.randaug_layers)


class TestClipTransform:
    """Short side resized (at decode time) to ``crop_size``, then 1 centre or 3 edge-to-edge square crops.

    Args:
        crop_size: side of each square view (TF: 256).
        num_crops: 1 (centre) or 3 (left/centre/right, top/centre/bottom for portrait videos).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, crop_size: int, num_crops: int = 3):
        if num_crops not in (1, 3):
            raise ValueError(f"TEST.NUM_SPATIAL_CROPS must be 1 or 3, got {num_crops}")
        self.crop_size, self.num_crops = crop_size, num_crops

    def decode_size(self, height: int, width: int) -> tuple[int, int]:
        """Frame size to decode at: short side = crop size, aspect kept."""
        scale = self.crop_size / min(height, width)
        return max(self.crop_size, int(round(height * scale))), max(self.crop_size, int(round(width * scale)))

    def __call__(self, frames: torch.Tensor, clips: list[np.ndarray] | None = None) -> torch.Tensor:
        """(U, 3, H, W) uint8 decoded frames -> (clips x crops, 3, T, crop, crop) uint8, clip-major.

        ``clips`` lists each clip's positions into the frames (default: one clip of all frames). The frames
        are made planar once and every view is copied straight into the output (no stack/cat copies).
        """
        size = self.crop_size
        if min(frames.shape[-2:]) != size:
            frames = F.resize(frames, [size], antialias=True)
        height, width = frames.shape[-2:]
        clips = clips if clips is not None else [np.arange(len(frames))]
        planar = frames.permute(1, 0, 2, 3).contiguous()  # (3, U, H, W)
        offsets = []
        for p in [0.5] if self.num_crops == 1 else [0.0, 0.5, 1.0]:
            top = int(round((height - size) * p)) if height > width else (height - size) // 2
            left = int(round((width - size) * p)) if width >= height else (width - size) // 2
            offsets.append((top, left))
        out = torch.empty(len(clips) * len(offsets), 3, len(clips[0]), size, size, dtype=torch.uint8)
        for v, positions in enumerate(clips):
            clip = planar.index_select(1, torch.from_numpy(np.asarray(positions)))
            for c, (top, left) in enumerate(offsets):
                out[v * len(offsets) + c].copy_(clip[..., top:top + size, left:left + size])
        return out


def planar(frames: torch.Tensor) -> torch.Tensor:
    """Contiguous (T, 3, H, W) copy of uint8 frames in any layout (numpy's transposing copy is ~2x torch's)."""
    if frames.is_contiguous():
        return frames
    return torch.from_numpy(np.ascontiguousarray(frames.numpy()))


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """Decoder output (T, H, W, 3) uint8 -> (T, 3, H, W) view without a copy."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2)


def scaled_size(height: int, width: int, scale: tuple[float, float]) -> tuple[int, int] | None:
    """Decode size for a (y, x) shrink; None (decode at the stored size) when the shrink is too mild to pay.

    A decode-time resize sends every returned frame through FFmpeg's general scaler instead of its fast
    YUV -> RGB path. Measured on H.264 at 340x256 and 1280x720 (32 frames of a 64-frame span), that only
    wins once the frames lose over half their pixels; milder shrinks are cheaper as a torch resize of the crop.
    """
    if scale[0] * scale[1] > DECODE_RESIZE_MAX_AREA:
        return None
    # Even sizes: FFmpeg's scaler takes a faster path for yuv420p (measured ~4% less decode time).
    return tuple(max(2, 2 * math.ceil(n * s / 2 - 1e-6)) for n, s in ((height, scale[0]), (width, scale[1])))
