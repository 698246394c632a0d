"""The three RandAugment policies a worker runs on one clip (``DATA.RANDAUGMENT_POLICY``): "torchvision"
(:class:`FastRandAugment`), and TF Model Garden's "tf" / "tf_reflect" (:class:`TFRandAugment`). Each draws apart
from applying (:meth:`draw` / :meth:`apply`), so that loader workers can draw and the training device apply.

torchvision's ``v2.RandAugment`` and TF's share the name, not the definition: torchvision's magnitude is a bin
0-30 of 31, its translations scale with the frame and it has no Invert, Cutout or SolarizeAdd; TF's runs on a 0-10
scale and picks each layer among 16 ops and identity (:mod:`~rs3d.data.augment.tf_spec`).
"""
from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors

from rs3d.data.augment.tf_kernels import tf_augment_op
from rs3d.data.augment.tf_spec import SIGNED_OPS, TF_OPS, cutout_box
from rs3d.data.augment.tv_kernels import fast_torchvision_op
from rs3d.data.augment.tv_spec import HookedRandAugment

__all__ = ["RANDAUGMENT_POLICIES", "FastRandAugment", "TFRandAugment", "build_randaugment"]

# "tf": TF Model Garden's RandAugment, magnitude on a 0-10 scale, out-of-frame pixels gray (128);
# "tf_reflect": the same with out-of-frame pixels mirrored, as tf-models-official's code runs it;
# "torchvision": v2.RandAugment, magnitude a bin 0-30 of 31.
RANDAUGMENT_POLICIES = ("tf", "tf_reflect", "torchvision")


class FastRandAugment(HookedRandAugment):
    """``v2.RandAugment`` with identical draws and outputs, several times faster on uint8 video: each op runs
    through the uint8 kernels of :mod:`~rs3d.data.augment.tv_kernels` where one applies, else torchvision's."""

    def apply_op(self, image: Any, op: str, magnitude: float) -> Any:
        """One op at a signed magnitude; the same result (and tensor type) as torchvision's kernel."""
        out = fast_torchvision_op(image, op, magnitude, self.interpolation, self.fill_for(image))
        if out is None:
            return super().apply_op(image, op, magnitude)
        return tv_tensors.wrap(out, like=image) if isinstance(image, tv_tensors.TVTensor) else out


class TFRandAugment:
    """RandAugment as TF Model Garden runs it on a video clip: one op and argument for the whole clip; Equalize and
    AutoContrast take histograms / ranges over the whole clip; Contrast is ``tf.image.adjust_contrast`` (each
    frame's per-channel mean); Cutout is TF's video cutout (a random box over a random run of frames) filled with
    128. Out-of-frame pixels of Rotate/Shear/Translate get gray 128 (``fill=128``, RandAugment as published), or
    mirror the frame (``fill=None``: what Model Garden actually runs, Keras' ``fill_mode='reflect'``).

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
        and ops whose ``prob_to_apply`` coin failed are left out."""
        g, draws = self.generator, []
        for _ in range(self.num_layers):
            choice = int(torch.randint(len(TF_OPS) + 1, (1,), generator=g))
            if choice == len(TF_OPS):
                continue  # the 17th choice: identity
            op = TF_OPS[choice]
            sign = -1.0 if op in SIGNED_OPS and float(torch.rand(1, generator=g)) < 0.5 else 1.0
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


def build_randaugment(layers: int, magnitude: float, policy: str) -> FastRandAugment | TFRandAugment | None:
    """The RandAugment of ``policy`` (see :data:`RANDAUGMENT_POLICIES`), or None when ``layers`` is 0.

    Args:
        layers: ops per clip (DATA.RANDAUGMENT_LAYERS).
        magnitude: strength (DATA.RANDAUGMENT_MAGNITUDE): 0-10 for "tf" / "tf_reflect" (above 10 extrapolates),
            an integer bin 0-30 for "torchvision".
        policy: which definition (DATA.RANDAUGMENT_POLICY).
    """
    if policy not in RANDAUGMENT_POLICIES:
        raise ValueError(f"DATA.RANDAUGMENT_POLICY must be one of {RANDAUGMENT_POLICIES}, got {policy!r}")
    if layers <= 0:
        return None
    if policy == "torchvision":
        if magnitude != int(magnitude) or not 0 <= magnitude <= 30:
            raise ValueError(f"DATA.RANDAUGMENT_MAGNITUDE must be a bin 0-30 under policy 'torchvision', got {magnitude}")
        return FastRandAugment(layers, int(magnitude))
    if magnitude < 0:
        raise ValueError(f"DATA.RANDAUGMENT_MAGNITUDE must be >= 0 under policy {policy!r}, got {magnitude}")
    return TFRandAugment(layers, magnitude, fill=128 if policy == "tf" else None)
