#!/usr/bin/env python
"""Submit a training run to Slurm, requeued after preemption until it finishes. Same as ``rs3d-submit``; see rs3d/commands/submit.py."""
from rs3d.commands.submit import console_main

if __name__ == "__main__":
    console_main()
