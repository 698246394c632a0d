"""Shared command-line plumbing for ``tools/*.py``: config arguments and one-line error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rs3d.config import ConfigError


def run(main: Callable[[], int | None]) -> None:
    """Call ``main()``; a config error becomes one ``error: ...`` line on stderr and exit status 2."""
    try:
        code = main()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)


def add_opts_argument(parser: argparse.ArgumentParser) -> None:
    """Trailing ``KEY VALUE`` config overrides, as in ``train_net.py --cfg X.yaml SOLVER.BASE_LR 0.4``."""
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, applied after the YAML file")
