"""Shared command-line plumbing for ``tools/*.py``: config arguments and one-line error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rs3d.config import ConfigError


def run(main: Callable[[], int | None]) -> None:
    """Call ``main()``; bad input (config, annotations, checkpoint) becomes one ``error: ...`` line and exit
    status 2, a run stopped by a NaN/Inf loss exits with status 3."""
    from rs3d.data.annotations import AnnotationError
    from rs3d.engine.checkpoint import CheckpointError
    from rs3d.engine.trainer import NonFiniteLossError

    try:
        code = main()
    except (ConfigError, AnnotationError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    sys.exit(code or 0)


def add_opts_argument(parser: argparse.ArgumentParser) -> None:
    """Trailing ``KEY VALUE`` config overrides, as in ``train_net.py --cfg X.yaml SOLVER.BASE_LR 0.4``."""
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, applied after the YAML file")
