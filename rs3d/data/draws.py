"""What a loader worker drew for one training clip, as the contract between the worker side and the device side.

Workers make every random draw of a clip (:meth:`~rs3d.data.transforms.TrainClipTransform.draw`) whether they
apply it themselves or, under ``DATA.AUGMENT_ON_DEVICE``, send it with the cropped clip for
:class:`~rs3d.data.device_inputs.BatchAugment` to apply: :class:`AugmentDraws` per clip, :func:`encode_draws` as
tensors that collate by concatenation. Both sides import this module; it imports neither.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from rs3d.data.augment.tf_spec import TF_OPS
from rs3d.data.augment.tv_spec import TORCHVISION_OPS

__all__ = ["AugmentDraws", "encode_draws", "policy_ops"]


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
    if policy not in ("tf", "tf_reflect", "torchvision"):
        raise ValueError(f"DATA.RANDAUGMENT_POLICY must be one of tf, tf_reflect, torchvision, got {policy!r}")
    return TORCHVISION_OPS if policy == "torchvision" else TF_OPS


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
