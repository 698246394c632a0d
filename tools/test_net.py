#!/usr/bin/env python
"""Multi-view test of trained weights, without training. Same as ``rs3d-test``; see rs3d/commands/test.py."""
from rs3d.commands.test import console_main

if __name__ == "__main__":
    console_main()
