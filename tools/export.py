#!/usr/bin/env python
"""Export a trained model (EMA weights) with torch.export, and to ONNX when ``onnx`` is installed. Same as ``rs3d-export``; see rs3d/commands/export.py."""
from rs3d.commands.export import console_main

if __name__ == "__main__":
    console_main()
