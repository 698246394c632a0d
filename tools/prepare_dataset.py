#!/usr/bin/env python
"""Re-encode a dataset for fast training: H.264, short side 256 (or 320), a keyframe every 16 frames. Same as ``rs3d-prepare-data``; see rs3d/commands/prepare_data.py."""
from rs3d.commands.prepare_data import console_main

if __name__ == "__main__":
    console_main()
