#!/usr/bin/env python
"""Train (RS recipe) and then test a video model. Same as ``rs3d-train``; see rs3d/commands/train.py."""
from rs3d.commands.train import console_main

if __name__ == "__main__":
    console_main()
