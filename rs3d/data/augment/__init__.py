"""RandAugment for uint8 video clips, bit-identical to its references: torchvision's ``v2.RandAugment`` (policy
"torchvision") and TF Model Garden's (policies "tf" and "tf_reflect", the ResNet-RS papers' "magnitude 10 / 15").

Modules, each importing only the ones above it:

- ``tf_spec``, ``tv_spec``: the two definitions (op names, arguments, draws, geometry); ``tv_spec`` is the one
  documented shim onto torchvision private API.
- ``frame_groups``: cache-sized frame groups and the fast float -> uint8 cast of the CPU kernels.
- ``plans``: the one cache of nearest-neighbour plans for geometric ops, with the CPU remap and the any-device gather.
- ``batch_kernels``: one op on (N, T, 3, H, W) clips in torch alone, on any device (the device path, and the
  per-clip TF path where it is as fast).
- ``tv_kernels``, ``tf_kernels``: per-clip CPU kernels for loader workers (``tf_kernels`` is the numpy twin of
  ``batch_kernels``, kept for the ops where it measurably wins).
- ``policies``: :class:`FastRandAugment`, :class:`TFRandAugment` and :func:`build_randaugment`: draw, then apply.
"""

from rs3d.data.augment.batch_kernels import EXACT_OPS, tf_batch_op, torchvision_batch_op
from rs3d.data.augment.policies import RANDAUGMENT_POLICIES, FastRandAugment, TFRandAugment, build_randaugment
from rs3d.data.augment.tf_kernels import tf_augment_op
from rs3d.data.augment.tf_spec import MAX_LEVEL, TF_OPS, cutout_box, tf_op_argument
from rs3d.data.augment.tv_kernels import adjust_sharpness_uint8
from rs3d.data.augment.tv_spec import TORCHVISION_OPS

__all__ = [
    "EXACT_OPS",
    "MAX_LEVEL",
    "RANDAUGMENT_POLICIES",
    "TF_OPS",
    "TORCHVISION_OPS",
    "FastRandAugment",
    "TFRandAugment",
    "adjust_sharpness_uint8",
    "build_randaugment",
    "cutout_box",
    "tf_augment_op",
    "tf_batch_op",
    "tf_op_argument",
    "torchvision_batch_op",
]
