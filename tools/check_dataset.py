#!/usr/bin/env python
"""Scan a split for missing, unreadable, truncated, too-short and odd videos; write a cleaned CSV. Same as ``rs3d-check-data``; see rs3d/commands/check_data.py."""
from rs3d.commands.check_data import console_main

if __name__ == "__main__":
    console_main()
