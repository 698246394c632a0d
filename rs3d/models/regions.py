"""The pieces of a model that regional compilation compiles one at a time: its stem and residual blocks.

Compiling the repeated block instead of the whole network (PyTorch's "regional compilation" recipe) gives dynamo
one small graph per distinct block signature, reused by every block that shares it, instead of one graph holding
every block: RS3D-50's 16 blocks are 12 signatures (first / middle / last of each stage).
"""

from __future__ import annotations

from torch import nn


def compile_regions(model: nn.Module) -> list[nn.Module]:
    """The stem and residual blocks of ``model``, in forward order: ``model.compile_regions()`` where the model
    defines it (rs3d's ResNet3D), pytorchvideo's stems and ``ResBlock``s for the baselines, else an empty list
    (the caller then compiles the whole model)."""
    own = getattr(model, "compile_regions", None)
    if callable(own):
        return list(own())
    from pytorchvideo.models.resnet import ResBlock
    from pytorchvideo.models.stem import ResNetBasicStem

    return [m for m in model.modules() if isinstance(m, (ResNetBasicStem, ResBlock))]
