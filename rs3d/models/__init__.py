"""Video classification models: rs3d's 3D ResNet-RS and pytorchvideo baselines, registered by name
(:mod:`rs3d.models.registry`) and built from configs or names (:mod:`rs3d.models.factory`)."""

from rs3d.models.factory import build_model, create_model, get_config, input_config, list_models
from rs3d.models.inflate import inflate_2d_weights
from rs3d.models.pretrained import InitReport, apply_init
from rs3d.models.registry import available_archs, check_backbone, register, register_model
from rs3d.models.resnet3d import (
    ResNet3D,
    resnet3d_r50_baseline,
    resnet3d_rs,
    resnet_rs_2d_equivalent,
)
from rs3d.models.tf_port import load_tf_model_garden_weights

__all__ = [
    "InitReport",
    "ResNet3D",
    "apply_init",
    "available_archs",
    "build_model",
    "check_backbone",
    "create_model",
    "get_config",
    "inflate_2d_weights",
    "input_config",
    "list_models",
    "load_tf_model_garden_weights",
    "register",
    "register_model",
    "resnet3d_r50_baseline",
    "resnet3d_rs",
    "resnet_rs_2d_equivalent",
]
