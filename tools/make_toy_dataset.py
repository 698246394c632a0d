#!/usr/bin/env python
"""Write the embedded toy motion dataset (8 classes told apart only by motion) as H.264 mp4s + PySlowFast CSVs. Same as ``rs3d-make-toy-data``; see rs3d/commands/make_toy_data.py."""
from rs3d.commands.make_toy_data import console_main

if __name__ == "__main__":
    console_main()
