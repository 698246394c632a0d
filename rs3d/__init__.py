"""rs3d: 3D ResNet-RS video classification with temporal scaling knobs, and fair 3D ResNet baselines."""

__version__ = "0.1.0"
