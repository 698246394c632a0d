"""What every command shares: the ``--cfg FILE [KEY VALUE ...]`` argument style, logging, and turning bad user
input into one ``error: ...`` line (exit status 2; 3 for a run that stopped itself, e.g. on a NaN loss) instead
of a traceback."""
from __future__ import annotations

import argparse
import errno
import math
import re
import sys
from collections.abc import Callable, Sequence

from fvcore.common.config import CfgNode

from rs3d.config import load_config
from rs3d.utils import paths
from rs3d.utils.errors import RunStoppedError, UserInputError

#: OSErrors that a user's machine or paths cause (reported as one line, exit 2), never a bug in rs3d.
ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                      errno.EISDIR, errno.ENAMETOOLONG}


class UsageError(UserInputError, ValueError):
    """A command-line argument that cannot work (printed as one ``error:`` line)."""


def check_prediction_options(args: argparse.Namespace, seconds: Sequence[str]) -> None:
    """rs3d-predict's and rs3d-demo's shared options (``topk``, ``batch_size``, ``device`` and the durations named in
    ``seconds``): numbers that cannot work and a device that is not there, as one line before any model is loaded."""
    import torch

    for name in ("topk", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    for name in seconds:
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds, got {value}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: no CUDA device is available here (use cpu or auto)")
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda[:N], got {args.device!r}")


def run(main: Callable[[], int | None]) -> None:
    """Call ``main()`` and exit with its status; errors caused by the user's input become one line."""
    try:
        code = main()
    except (UserInputError, RunStoppedError) as exc:
        print(f"{getattr(exc, 'prefix', 'error')}: {exc}", file=sys.stderr)  # "stopped: ..." on preemption
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as exc:  # the machine's, not the code's: a read-only or full file system, a path through a file
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)


def make_parser(doc: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    """A parser whose help shows the command's module docstring verbatim."""
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--cfg FILE`` and trailing ``KEY VALUE`` overrides, as in ``rs3d-train --cfg X.yaml SOLVER.BASE_LR 0.4``."""
    parser.add_argument("--cfg", required=required, metavar="FILE", help="config file (YAML, may use _BASE_)")
    add_opts_argument(parser)


def add_opts_argument(parser: argparse.ArgumentParser) -> None:
    """Trailing ``KEY VALUE`` config overrides, applied after the YAML file."""
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], metavar="KEY VALUE",
                        help="config overrides as KEY VALUE pairs, applied after the config file")


_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)+$")


def split_overrides(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """Positional items, then trailing ``KEY VALUE`` config overrides: the first upper-case dotted item
    (``TEST.BATCH_SIZE``) that is not an existing path starts the overrides. For commands whose positional
    arguments (paths) come before the overrides."""
    items = list(items)
    for i, item in enumerate(items):
        if _CONFIG_KEY.match(item) and not paths.exists(item):
            return items[:i], items[i:]
    return items, []


def parse_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> tuple[argparse.Namespace,
                                                                                              CfgNode]:
    """Parse the command line and load ``--cfg`` with the trailing overrides."""
    args = parser.parse_args(argv)
    return args, load_config(args.cfg, args.opts)


def add_data_tool_arguments(parser: argparse.ArgumentParser, positional: str, help_text: str) -> None:
    """The data tools' style: positional folders then trailing ``KEY VALUE`` overrides (``items``), and ``--cfg``
    from which they take what training reads (clip length, data folder, annotation formats)."""
    parser.add_argument("items", nargs="*", metavar=f"{positional} [KEY VALUE ...]",
                        help=f"{help_text}, then config overrides as KEY VALUE pairs (with --cfg)")
    parser.add_argument("--cfg", metavar="FILE", help="take the clip length (DATA.NUM_FRAMES, DATA.SAMPLING_RATE), the "
                        "data folder, DATA.PATH_PREFIX and the Kinetics / CSV / class-folder formats from this config, "
                        "as training reads them")


def parse_data_tool(parser: argparse.ArgumentParser, argv: Sequence[str] | None, most: int
                    ) -> tuple[argparse.Namespace, list[str], CfgNode]:
    """Parse a data tool's command line: (arguments, at most ``most`` positional folders, config). Without
    ``--cfg`` the config holds the defaults and overrides are refused. Options may come between the folders and
    the overrides (``DST --workers 4 DATA.SAMPLING_RATE 3``)."""
    args = parser.parse_intermixed_args(argv)
    positional, overrides = split_overrides(args.items)
    if len(positional) > most:
        parser.error(f"at most {most} folder{'s' if most > 1 else ''} expected, got {' '.join(positional)}")
    if overrides and not args.cfg:
        parser.error("KEY VALUE overrides need --cfg")
    return args, positional, load_config(args.cfg, overrides)
