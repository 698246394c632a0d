"""Flip and RandAugment of a whole training batch on the training device (``DATA.AUGMENT_ON_DEVICE``).

Loader workers make every random draw of a clip exactly as the worker-side path does
(:meth:`~rs3d.data.transforms.TrainClipTransform.draw`: the same RNG calls in the same order, so the per-sample
seeding and exact resume hold unchanged) but only cut the crop box out of the decoded frames. The crops and their
draws (:func:`encode_draws`) travel with the batch and :class:`BatchAugment` finishes on the device: the resize to
the crop size, the flip, then RandAugment, where clips that share an op and argument form one group and the op
runs once on the group's (n x T, 3, H, W) frames.

Exactness: on the CPU the result equals the worker path bit for bit (tests/data/test_batch_augment.py). On a GPU, flips,
every geometric op (a precomputed gather), Cutout, Invert, Posterize, Solarize, SolarizeAdd and Equalize are exact
(integer work or copies); the float colour ops (Brightness, Color, Contrast, Sharpness, AutoContrast) may differ
by one level on a few pixels where a CUDA kernel contracts a multiply-add into an FMA or sums a mean in another
order; the antialiased resize (fixed point on the CPU, float on CUDA) by up to 3 levels (both checked against the
CPU in tests/test_gpu.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torchvision.transforms.v2 import RandAugment
from torchvision.transforms.v2 import functional as F

from rs3d.data.randaugment import source_pixels
from rs3d.data.randaugment_tf import TF_OPS
from rs3d.data.randaugment_tf_torch import gather_through_plan, tf_batch_op

__all__ = ["AugmentDraws", "BatchAugment", "encode_draws", "policy_ops", "resize_crop"]

_TV_OPS = tuple(RandAugment._AUGMENTATION_SPACE)
_TV_GEOMETRIC = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"})


@dataclass(frozen=True)
class AugmentDraws:
    """The random draws of one training clip.

    Args:
        flip: flip horizontally (before RandAugment).
        ops: RandAugment ops in order, each ``(op, value, box)``: for policy "torchvision" value is the signed
            magnitude; for "tf" / "tf_reflect" it is the sign of Rotate/Shear/Translate and ``box`` the Cutout box
            (t0, t1, y0, y1, x0, x1).
    """

    flip: bool
    ops: tuple[tuple[str, float, tuple[int, ...] | None], ...] = field(default=())


def policy_ops(policy: str) -> tuple[str, ...]:
    """The op names of a RandAugment policy, in the order their indices are encoded."""
    return _TV_OPS if policy == "torchvision" else TF_OPS


def encode_draws(draws: Sequence[AugmentDraws], policy: str, layers: int) -> dict[str, torch.Tensor]:
    """Draws of K clips as tensors that collate by concatenation: ``flip`` (K,) bool, ``op`` (K, L) int64 index
    into :func:`policy_ops` (-1: no op), ``value`` (K, L) float64, ``box`` (K, L, 6) int64."""
    names = {name: i for i, name in enumerate(policy_ops(policy))}
    width = max([layers, *(len(d.ops) for d in draws)])
    op = torch.full((len(draws), width), -1, dtype=torch.int64)
    value = torch.zeros(len(draws), width, dtype=torch.float64)
    box = torch.zeros(len(draws), width, 6, dtype=torch.int64)
    for k, clip in enumerate(draws):
        for layer, (name, v, b) in enumerate(clip.ops):
            op[k, layer], value[k, layer] = names[name], v
            if b is not None:
                box[k, layer] = torch.tensor(b)
    return {"flip": torch.tensor([d.flip for d in draws], dtype=torch.bool), "op": op, "value": value, "box": box}


def resize_crop(clip: torch.Tensor, crop_size: int) -> torch.Tensor:
    """A (T, 3, h, w) crop resized to crop_size x crop_size (antialiased; none when it already has that size): the
    workers' last step on the worker path, the device's first under DATA.AUGMENT_ON_DEVICE."""
    if tuple(clip.shape[-2:]) != (crop_size, crop_size):
        clip = F.resize(clip, [crop_size, crop_size], antialias=True)
    return clip


class BatchAugment:
    """Apply encoded draws to a batch of cropped uint8 clips on its device; see the module docstring.

    Args:
        policy: ``"tf"``, ``"tf_reflect"`` or ``"torchvision"`` (DATA.RANDAUGMENT_POLICY), as the workers drew.
        magnitude: DATA.RANDAUGMENT_MAGNITUDE (the TF ops take it from here; torchvision's draws carry it).
        translate_const: TF's translation in pixels at magnitude 10.
    """

    def __init__(self, policy: str = "tf", magnitude: float = 10.0, translate_const: float = 100.0):
        self.policy, self.magnitude, self.translate_const = policy, float(magnitude), translate_const
        self.fill = None if policy == "tf_reflect" else 128
        self._ops = policy_ops(policy)
        self._torchvision = RandAugment()  # default nearest interpolation and fill 0, as the worker path's

    def __call__(self, video: Sequence[torch.Tensor], draws: dict[str, torch.Tensor], device: torch.device | str,
                 crop_size: int) -> torch.Tensor:
        """The loader's N crops in this mode ((T, h, w, 3) uint8 each, of any size) and their encoded draws ->
        resized and augmented (N, 3, T, crop_size, crop_size) uint8 on ``device``, the worker path's layout."""
        x = torch.stack([resize_crop(clip.to(device, non_blocking=True).permute(0, 3, 1, 2), crop_size)
                         for clip in video]).contiguous()  # (N, T, 3, crop, crop): planes, as the kernels want them
        flips = torch.nonzero(draws["flip"].cpu()).view(-1)  # host-side draws: no device synchronisation
        if len(flips):
            index = flips.to(x.device, non_blocking=True)
            x.index_copy_(0, index, x.index_select(0, index).flip(-1))
        ops, values, boxes = draws["op"].cpu(), draws["value"].cpu(), draws["box"]
        for layer in range(ops.shape[1]):
            groups: dict[tuple[int, float], list[int]] = {}
            for k, (op, value) in enumerate(zip(ops[:, layer].tolist(), values[:, layer].tolist())):
                if op >= 0:
                    groups.setdefault((op, value), []).append(k)
            for (op, value), members in groups.items():
                # Host tensors copied with non_blocking: a blocking copy would wait for the device each time.
                index = torch.tensor(members).to(x.device, non_blocking=True)
                group = x.index_select(0, index)
                box = boxes[members, layer].to(x.device, non_blocking=True) if self._ops[op] == "Cutout" else None
                x.index_copy_(0, index, self._apply(group, self._ops[op], value, box))
        return x.transpose(1, 2).contiguous()

    def _apply(self, clips: torch.Tensor, op: str, value: float, box: torch.Tensor | None) -> torch.Tensor:
        """One op with one argument on (n, T, 3, H, W) clips."""
        if self.policy != "torchvision":
            return tf_batch_op(clips, op, self.magnitude, value, self.fill, self.translate_const, box)
        if op in _TV_GEOMETRIC:
            return self._gather(clips, op, value)
        frames = clips.reshape(-1, *clips.shape[-3:])  # torchvision's ops treat every frame as an image
        out = RandAugment._apply_image_or_video_transform(self._torchvision, frames, op, value,
                                                           self._torchvision.interpolation, self._torchvision._fill)
        return out.reshape(clips.shape)

    def _gather(self, clips: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
        """torchvision's nearest-neighbour geometric op as one gather (exact on every device); outside the frame
        torchvision's default fill, 0."""
        height, width = clips.shape[-2:]
        return gather_through_plan(clips, ("torchvision", op, magnitude),
                                   lambda: source_pixels(op, magnitude, height, width), 0)
