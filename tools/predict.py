#!/usr/bin/env python
"""Top-k classes for videos, with class names (also installed as the ``rs3d-predict`` command).

    python tools/predict.py --checkpoint output/toy_rs3d_tiny/model_final.pyth output/toy_data/videos/val
    python tools/predict.py --checkpoint model.pyth --window-sec 2 --stride-sec 1 long.mp4 --output timeline.json
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rs3d.inference.cli import main  # noqa: E402
from rs3d.utils import cli  # noqa: E402

if __name__ == "__main__":
    cli.run(main)
