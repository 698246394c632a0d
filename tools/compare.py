#!/usr/bin/env python
"""Compare configs side by side on this device, as Markdown, CSV and a speed-vs-accuracy plot. Same as ``rs3d-compare``; see rs3d/commands/compare.py."""
from rs3d.commands.compare import console_main

if __name__ == "__main__":
    console_main()
