"""Video classification models: rs3d's 3D ResNet-RS and pytorchvideo baselines behind one builder."""

from rs3d.models.build import available_archs, build_model
from rs3d.models.inflate import inflate_2d_weights
from rs3d.models.resnet3d import (
    ResNet3D,
    resnet3d_r50_baseline,
    resnet3d_rs,
    resnet_rs_2d_equivalent,
)
from rs3d.models.tf_port import load_tf_model_garden_weights

__all__ = [
    "ResNet3D",
    "available_archs",
    "build_model",
    "inflate_2d_weights",
    "load_tf_model_garden_weights",
    "resnet3d_r50_baseline",
    "resnet3d_rs",
    "resnet_rs_2d_equivalent",
]
