#!/usr/bin/env python
"""Top-k classes for videos, with class names. Same as ``rs3d-predict``; see rs3d/commands/predict.py."""
from rs3d.commands.predict import console_main

if __name__ == "__main__":
    console_main()
