"""rs3d: 3D ResNet-RS video classification with temporal scaling knobs, and fair 3D ResNet baselines."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``rs3d.Predictor`` without importing torch at ``import rs3d``."""
    if name in ("Predictor", "Prediction"):
        from rs3d import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'rs3d' has no attribute {name!r}")
