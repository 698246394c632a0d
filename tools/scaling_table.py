#!/usr/bin/env python
"""Scaling strategies (rs3d/studies/scaling.py): generate configs along one axis or the paper's recommended path, and Same as ``rs3d-scaling-table``; see rs3d/commands/scaling_table.py."""
from rs3d.commands.scaling_table import console_main

if __name__ == "__main__":
    console_main()
