"""Scan a split for missing, unreadable, truncated, too-short and odd videos; write a cleaned CSV.

    python tools/check_dataset.py data/kinetics400 --split train --num-frames 32 --sampling-rate 2 --workers 16
    python tools/check_dataset.py data/kinetics400 --split val --drop-short --out /tmp/val.clean.csv
    rs3d-check-data --cfg configs/kinetics400/rs3d_50.yaml --split train DATA.PATH_TO_DATA_DIR data/kinetics400

With --cfg the clip length, the data folder, DATA.PATH_PREFIX and the Kinetics path format come from the config
(and its trailing KEY VALUE overrides), exactly as training will read them.

Reads DATA_DIR/<split>.csv (PySlowFast "path label" or official Kinetics), or a folder of class folders split
as training splits it (DATA.FOLDER_VAL_FRACTION held out when there is no val/ folder). The cleaned CSV (default
DATA_DIR/<split>.clean.csv) keeps the input's lines verbatim for readable videos only; --drop-short also drops
videos shorter than one clip, (NUM_FRAMES - 1) * SAMPLING_RATE + 1 frames. Exit status 0 even when problems
are found (this is a report), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rs3d.commands import base as cli
from rs3d.data.annotations import AnnotationError
from rs3d.data.metadata import metadata_path, save_metadata
from rs3d.data.prep.checks import check_split, format_report
from rs3d.data.prep.pool import progress_printer
from rs3d.data.splits import read_split, split_options, write_csv_subset
from rs3d.utils.writable import check_output_file


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = cli.make_parser(__doc__, "rs3d-check-data")
    cli.add_data_tool_arguments(parser, "DATA_DIR", "dataset folder holding <split>.csv or class folders (default "
                                "with --cfg: DATA.PATH_TO_DATA_DIR)")
    parser.add_argument("--split", default="train", help="which <split>.csv to check")
    parser.add_argument("--num-frames", type=int, default=None,
                        help="frames per clip (default: the config's DATA.NUM_FRAMES, else 32)")
    parser.add_argument("--sampling-rate", type=int, default=None,
                        help="stride between frames (default: the config's DATA.SAMPLING_RATE, else 2)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: os.cpu_count())")
    parser.add_argument("--out", default=None, help="cleaned CSV (default: DATA_DIR/<split>.clean.csv)")
    parser.add_argument("--drop-short", action="store_true", help="also drop videos shorter than one clip")
    parser.add_argument("--no-decode", action="store_true", help="only open and index, skip test decodes (faster)")
    parser.add_argument("--show", type=int, default=5, help="videos listed per problem category")
    parser.add_argument("--kinetics-path-format", default=None, help="file of an official Kinetics CSV row "
                        "(default: the config's DATA.KINETICS_PATH_FORMAT)")
    args, positional, cfg = cli.parse_data_tool(parser, argv, most=1)
    args.data_dir = positional[0] if positional else cfg.DATA.PATH_TO_DATA_DIR
    if not args.data_dir:
        parser.error("give DATA_DIR, or --cfg with DATA.PATH_TO_DATA_DIR set")
    if args.num_frames is None:
        args.num_frames = cfg.DATA.NUM_FRAMES
    if args.sampling_rate is None:
        args.sampling_rate = cfg.DATA.SAMPLING_RATE
    args.split_options = {**split_options(cfg), **({"path_format": args.kinetics_path_format}
                                                  if args.kinetics_path_format else {})}
    if args.num_frames < 1 or args.sampling_rate < 1:
        parser.error("--num-frames and --sampling-rate must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Check every video of the split, print the report, write the cleaned CSV."""
    args = parse_args(argv)
    check_output_file(args.out or os.path.join(args.data_dir, f"{args.split}.clean.csv"), "--out")
    try:
        records = read_split(args.data_dir, args.split, **args.split_options)
    except AnnotationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    csv_path = os.path.join(args.data_dir, f"{args.split}.csv")
    min_frames = (args.num_frames - 1) * args.sampling_rate + 1
    print(f"checking {len(records)} videos of {csv_path} (one clip spans {min_frames} frames)", flush=True)
    checks = check_split(records, args.workers, min_frames, decode=not args.no_decode,
                         progress=progress_printer(args.split))
    print(format_report(checks, args.show))
    keep = [r for r, c in zip(records, checks) if c.readable and not (args.drop_short and c.status == "too_short")]
    out = args.out or os.path.join(args.data_dir, f"{args.split}.clean.csv")
    write_csv_subset(csv_path, keep, out)
    print(f"\nwrote {out}: {len(keep)} of {len(records)} videos")
    meta = metadata_path(args.data_dir, args.split)
    count = save_metadata(meta, checks)
    print(f"wrote {meta}: stream facts of {count} videos (the loaders use them instead of probing each video)")
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-check-data`` console command (same as tools/check_dataset.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
