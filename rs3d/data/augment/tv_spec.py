"""torchvision's RandAugment as a definition (policy "torchvision"): its op space, its random draws, its op
kernels and the geometry of its nearest-neighbour ops.

This is rs3d's one shim onto torchvision private API (pinned torchvision==0.29.1). ``v2.RandAugment`` has no public
way to list its ops, to draw without applying, or to apply one named op with a magnitude: they exist only as the
class attribute ``_AUGMENTATION_SPACE``, the per-op hook ``_apply_image_or_video_transform`` that ``forward`` calls
once per draw, and the fill table ``_fill`` read through ``v2._utils._get_fill``. Every other module reaches them
through the public names here; tests/data/augment/test_randaugment.py checks the results against ``v2.RandAugment`` itself,
so a torchvision that changes them fails there, not silently.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode, RandAugment
from torchvision.transforms.v2._utils import _get_fill

__all__ = ["TORCHVISION_GEOMETRIC", "TORCHVISION_OPS", "HookedRandAugment", "torchvision_magnitudes",
           "torchvision_op", "torchvision_source_pixels"]

TORCHVISION_OPS = tuple(RandAugment._AUGMENTATION_SPACE)  # the op names in torchvision's draw order
TORCHVISION_GEOMETRIC = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"})


def torchvision_magnitudes(op: str, num_bins: int, height: int, width: int) -> tuple[torch.Tensor | None, bool]:
    """torchvision's magnitude of every bin for ``op`` on (height, width) frames (None: the op takes none), and
    whether RandAugment negates it at random."""
    magnitudes, signed = RandAugment._AUGMENTATION_SPACE[op]
    return magnitudes(num_bins, height, width), signed


class HookedRandAugment(RandAugment):
    """``v2.RandAugment`` with its per-op step as public methods: :meth:`draw` records what ``forward`` would apply
    (the same RNG calls in the same order), :meth:`apply` applies recorded draws, and :meth:`apply_op` (torchvision's
    kernel here) is what a subclass overrides to run an op another way."""

    _draws: list[tuple[str, float]] | None = None  # set while draw() records instead of applying

    def draw(self, shape: tuple[int, ...]) -> list[tuple[str, float]]:
        """The (op, signed magnitude) list that ``forward`` would apply to an input of ``shape`` (..., H, W),
        drawn from torch's global generator by torchvision's own ``forward``."""
        self._draws = []
        try:
            dummy = torch.empty(1, dtype=torch.uint8).expand(1, 3, *shape[-2:])
            super().forward(tv_tensors.Video(dummy))  # records through _apply_image_or_video_transform
            return self._draws
        finally:
            self._draws = None

    def apply(self, video: torch.Tensor, draws: list[tuple[str, float]]) -> torch.Tensor:
        """Apply ops from :meth:`draw` in order; with the same draws, the same result as ``forward``."""
        for op, magnitude in draws:
            video = self.apply_op(video, op, magnitude)
        return video

    def apply_op(self, image: Any, op: str, magnitude: float) -> Any:
        """One op at a signed magnitude with this transform's interpolation and fill: torchvision's kernel."""
        return RandAugment._apply_image_or_video_transform(self, image, op, magnitude, self.interpolation, self._fill)

    def fill_for(self, image: Any) -> Any:
        """The fill this transform uses for ``image``'s type (a number, a sequence or None)."""
        return _get_fill(self._fill, type(image))

    def _apply_image_or_video_transform(self, image: Any, transform_id: str, magnitude: float,
                                        interpolation: Any, fill: Any) -> Any:
        """torchvision's per-op hook, called by ``forward``: record under :meth:`draw`, else :meth:`apply_op`."""
        if self._draws is not None:
            self._draws.append((transform_id, magnitude))
            return image
        return self.apply_op(image, transform_id, magnitude)


_DEFAULT = HookedRandAugment()  # nearest interpolation, fill 0: the policy as rs3d runs it


def torchvision_op(image: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """torchvision's kernel for one op at a signed magnitude, nearest interpolation, fill 0 (RandAugment's default)."""
    return _DEFAULT.apply_op(image, op, magnitude)


def torchvision_source_pixels(op: str, magnitude: float, height: int, width: int) -> np.ndarray:
    """(H, W) flat source pixel of every output pixel (-1 = outside) of a nearest-neighbour geometric op:
    torchvision's own kernel moves a ramp of pixel numbers (1-based, 0 = outside) exactly like any image."""
    ramp = torch.arange(1, height * width + 1, dtype=torch.float32).view(1, 1, height, width)
    moved = RandAugment._apply_image_or_video_transform(_DEFAULT, ramp, op, magnitude, InterpolationMode.NEAREST,
                                                       {"others": None})
    return moved.view(height, width).to(torch.int64).sub_(1).numpy()
