"""rs3d: 3D ResNet-RS video classification with temporal scaling knobs, and fair 3D ResNet baselines.

    import rs3d
    rs3d.list_models()                                      # ['c2d_r50', 'i3d_r50', ..., 'rs3d_50', ...]
    model = rs3d.create_model("rs3d_50", num_classes=10)    # random init; pretrained=True: ImageNet, inflated
    model.pretrained_cfg                                    # frames, stride, crops, mean/std
"""

__version__ = "0.1.0"


_MODEL_API = ("create_model", "list_models", "get_config", "build_model", "register_model", "available_archs")


def __getattr__(name: str):
    """``rs3d.Predictor``, ``rs3d.create_model`` ... without importing torch at ``import rs3d``."""
    if name in ("Predictor", "Prediction"):
        from rs3d import inference

        return getattr(inference, name)
    if name in _MODEL_API:
        from rs3d import models

        return getattr(models, name)
    raise AttributeError(f"module 'rs3d' has no attribute {name!r}")
