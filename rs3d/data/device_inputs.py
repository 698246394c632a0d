"""The device side of a clip's path: a collated uint8 batch -> the model's float input on the training device.

:class:`ClipNormalizer` normalises every batch (training, validation, testing, prediction). For training,
:class:`TrainInputs` first runs :class:`BatchAugment` when the loader's workers left augmentation to the device
(``DATA.AUGMENT_ON_DEVICE``): they made every random draw of a clip exactly as the worker path does
(:meth:`~rs3d.data.transforms.TrainClipTransform.draw`, so per-sample seeding and exact resume hold unchanged) but
only cut the crop box out of the decoded frames; the crops and their draws (:mod:`rs3d.data.draws`) travel with the
batch, and :class:`BatchAugment` finishes here: the resize to the crop size, the flip, then RandAugment, where clips
that share an op and argument form one group and the op runs once on the group's frames
(:mod:`rs3d.data.augment.batch_kernels`).

Exactness: on the CPU the result equals the worker path bit for bit (tests/data/test_device_inputs.py). On a GPU,
flips, every geometric op (a precomputed gather), Cutout, Invert, Posterize, Solarize, SolarizeAdd and Equalize are
exact (integer work or copies); the float colour ops (Brightness, Color, Contrast, Sharpness, AutoContrast) may
differ by one level on a few pixels where a CUDA kernel contracts a multiply-add into an FMA or sums a mean in
another order; the antialiased resize (fixed point on the CPU, float on CUDA) by up to 3 levels (both checked
against the CPU in tests/test_gpu.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from fvcore.common.config import CfgNode

from rs3d.config.loader import ConfigError
from rs3d.data.augment.batch_kernels import tf_batch_op, torchvision_batch_op
from rs3d.data.batch import ClipBatch
from rs3d.data.draws import policy_ops
from rs3d.data.transforms import resize_crop

__all__ = ["BatchAugment", "ClipNormalizer", "TrainInputs"]


class ClipNormalizer:
    """uint8 (N, 3, T, H, W) on the host -> normalised float on ``device``, batched (the loader stays uint8)."""

    def __init__(self, mean: list[float], std: list[float], mode: str = "mean_std",
                 device: torch.device | str = "cpu", channels_last: bool = False):
        if mode not in ("mean_std", "unit"):
            raise ConfigError(f"DATA.NORMALIZATION: {mode!r} is not one of mean_std, unit")
        self.device = torch.device(device)
        self.channels_last = channels_last
        shape = (1, 3, 1, 1, 1)
        m = torch.tensor(mean if mode == "mean_std" else [0.0] * 3).view(shape) * 255.0
        s = torch.tensor(std if mode == "mean_std" else [1.0] * 3).view(shape) * 255.0
        self.mean, self.inv_std = m.to(self.device), (1.0 / s).to(self.device)

    @classmethod
    def from_config(cls, cfg: CfgNode, device: torch.device | str = "cpu", channels_last: bool = False):
        """DATA.MEAN, DATA.STD and DATA.NORMALIZATION."""
        return cls(list(cfg.DATA.MEAN), list(cfg.DATA.STD), cfg.DATA.NORMALIZATION, device, channels_last)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Normalise a (N, 3, T, H, W) or (N, V, 3, T, H, W) uint8 batch on the device."""
        views = video.shape[:-4]
        x = video.to(self.device, non_blocking=True).reshape(-1, *video.shape[-4:]).float()
        x = (x - self.mean) * self.inv_std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x if len(views) == 1 else x.reshape(*views, *x.shape[1:])


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
        if self.policy == "torchvision":
            return torchvision_batch_op(clips, op, value)
        return tf_batch_op(clips, op, self.magnitude, value, self.fill, self.translate_const, box)


class TrainInputs:
    """A training batch -> the model's input on the device: with ``augment`` (the loader's workers left
    augmentation to the device) the crops' resize, flip and RandAugment run here first, then normalisation.

    Build it and the training loader from one decision about where augmentation runs
    (:func:`rs3d.data.build.build_train_inputs`, ``Trainer.build_train_inputs``); a batch that disagrees with it
    is refused with a message rather than trained on.
    """

    def __init__(self, normalizer: ClipNormalizer, augment: BatchAugment | None = None, crop_size: int = 224):
        self.normalizer, self.augment, self.crop_size = normalizer, augment, crop_size

    def __call__(self, batch: ClipBatch) -> torch.Tensor:
        """A collated training batch -> normalised float (N, 3, T, crop, crop) on the normaliser's device."""
        video = batch["video"]
        if (self.augment is not None) != ("augment" in batch):
            carried = "carries the workers' draws" if "augment" in batch else "is already augmented"
            expected = "augmented clips" if self.augment is None else "crops with their draws"
            raise ValueError(f"a training batch that {carried} reached inputs built for {expected}: build the train "
                             "loader and the train inputs from the same augment_on_device decision")
        if self.augment is not None:
            video = self.augment(video, batch["augment"], self.normalizer.device, self.crop_size)
        return self.normalizer(video)
