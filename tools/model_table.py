#!/usr/bin/env python
"""Print the model zoo table: parameters, fvcore GFLOPs per view and measured inference speed and memory. Same as ``rs3d-model-table``; see rs3d/commands/model_table.py."""
from rs3d.commands.model_table import console_main

if __name__ == "__main__":
    console_main()
