#!/usr/bin/env python
"""A local web page for a trained model (Gradio). Same as ``rs3d-demo``; see rs3d/commands/demo.py."""
from rs3d.commands.demo import console_main

if __name__ == "__main__":
    console_main()
