"""Using trained models: video and clip prediction with class names."""

from rs3d.inference.predictor import Prediction, Predictor
from rs3d.inference.windows import Window, sliding_windows

__all__ = ["Prediction", "Predictor", "Window", "sliding_windows"]
