"""Re-encode a dataset for fast training: H.264, short side 256 (or 320), a keyframe every 16 frames.

    rs3d-prepare-data --cfg configs/kinetics400/rs3d_50.yaml data/kinetics400_256 DATA.PATH_TO_DATA_DIR data/k400
    rs3d-prepare-data data/kinetics400 data/kinetics400_256 --workers 16
    python tools/prepare_dataset.py data/k400 data/k400_320 --short-side 320 --splits train val

Reads each split of SRC_DATA_DIR as training reads it: <split>.csv (PySlowFast "path label" or official
Kinetics; videos under DATA.PATH_PREFIX when set) or a folder of class folders (split by train/ and val/
folders or DATA.FOLDER_VAL_FRACTION). With --cfg, SRC_DATA_DIR defaults to the config's DATA.PATH_TO_DATA_DIR
and the clip facts come from the config (and its trailing KEY VALUE overrides): skippable odd frames only pay
for an even DATA.SAMPLING_RATE, and outputs shorter than one clip, (DATA.NUM_FRAMES - 1) * DATA.SAMPLING_RATE
+ 1 frames, are counted. Without --cfg the config defaults apply (32 frames, stride 2).

Every listed video is written to the same relative path under DST_DATA_DIR, then the split CSVs (lines of
failed videos left out; PySlowFast lines for a class-folder source, whose exact split they keep),
classnames.json and the stream facts, so DST_DATA_DIR is a ready dataset folder. Outputs are renamed into place
when complete, so an interrupted run is resumed by running it again: existing outputs are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from fvcore.common.config import CfgNode

from rs3d.commands import base as cli
from rs3d.data.annotations import AnnotationError, VideoRecord
from rs3d.data.metadata import metadata_path, save_metadata
from rs3d.data.prep.pool import progress_printer
from rs3d.data.prep.reencode import copy_class_names, prepare_split, probe_outputs
from rs3d.data.splits import read_class_names, read_split, split_options, write_csv_subset, write_slowfast_csv
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_write_text
from rs3d.utils.class_folders import is_class_folder_dataset, split_folder
from rs3d.utils.tables import markdown_table


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the clip facts and data formats come from the config."""
    parser = cli.make_parser(__doc__, "rs3d-prepare-data")
    cli.add_data_tool_arguments(parser, "[SRC_DATA_DIR] DST_DATA_DIR",
                                "the dataset folder to read (default with --cfg: DATA.PATH_TO_DATA_DIR) and the output "
                                "dataset folder (created)")
    parser.add_argument("--short-side", type=int, default=256, help="output short side; smaller videos keep theirs")
    parser.add_argument("--keyframe-interval", type=int, default=16, help="frames per GOP")
    parser.add_argument("--crf", type=int, default=23, help="x264 quality (lower = better, bigger)")
    parser.add_argument("--preset", default="veryfast", help="x264 speed preset")
    parser.add_argument("--tune", default="fastdecode",
                        help="x264 tuning; fastdecode (default) makes random clips decode ~1.4x faster for ~6%% more "
                             "bytes; 'none' for x264's plain settings")
    parser.add_argument("--skippable-odd-frames", action=argparse.BooleanOptionalAction, default=None,
                        help="make every odd frame a non-reference B-frame, so clips with an even stride decode half "
                             "the frames (~8%% more bytes); default: on when the config's DATA.SAMPLING_RATE is even. "
                             "--no-skippable-odd-frames lets x264 choose B-frames")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: os.cpu_count())")
    parser.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="splits to convert")
    parser.add_argument("--show", type=int, default=10, help="failures listed per split")
    parser.add_argument("--kinetics-path-format", default=None, help="file of an official Kinetics CSV row "
                        "(default: the config's DATA.KINETICS_PATH_FORMAT)")
    args, positional, cfg = cli.parse_data_tool(parser, argv, most=2)
    if len(positional) == 2:
        args.src_data_dir, args.dst_data_dir = positional
    elif len(positional) == 1 and cfg.DATA.PATH_TO_DATA_DIR:
        args.src_data_dir, args.dst_data_dir = cfg.DATA.PATH_TO_DATA_DIR, positional[0]
    else:
        parser.error("give SRC_DATA_DIR and DST_DATA_DIR, or --cfg with DATA.PATH_TO_DATA_DIR set and DST_DATA_DIR")
    args.cfg_node = cfg
    args.clip_span = (cfg.DATA.NUM_FRAMES - 1) * cfg.DATA.SAMPLING_RATE + 1
    if args.skippable_odd_frames is None:
        args.skippable_odd_frames = cfg.DATA.SAMPLING_RATE % 2 == 0
    args.split_options = {**split_options(cfg), **({"path_format": args.kinetics_path_format}
                                                  if args.kinetics_path_format else {})}
    if args.short_side < 2 or args.keyframe_interval < 1:
        parser.error("--short-side must be >= 2 and --keyframe-interval >= 1")
    if args.skippable_odd_frames and args.keyframe_interval % 2:
        parser.error(f"--keyframe-interval {args.keyframe_interval} is odd: skippable odd frames need an even "
                     "interval (or pass --no-skippable-odd-frames)")
    return args


def available_splits(src: str, wanted: Sequence[str]) -> tuple[list[str], bool]:
    """The wanted splits SRC_DATA_DIR has, and whether it is a folder of class folders (test only from a test/
    folder there: otherwise it would repeat val)."""
    if is_class_folder_dataset(src):
        return [s for s in wanted if s != "test" or split_folder(src, "test")], True
    return [s for s in wanted if paths.isfile(os.path.join(src, f"{s}.csv"))], False


def video_root(src: str, cfg: CfgNode, folders: bool) -> str:
    """Where the listed videos live: DATA.PATH_PREFIX for a CSV dataset that sets it, else SRC_DATA_DIR."""
    return cfg.DATA.PATH_PREFIX if cfg.DATA.PATH_PREFIX and not folders else src


def main(argv: Sequence[str] | None = None) -> int:
    """Convert each split, then write its CSV and the class names; print a summary per split."""
    args = parse_args(argv)
    src, dst = args.src_data_dir, args.dst_data_dir
    def resolved(path: str) -> str:  # symbolic links followed on local disk: a link to SRC is SRC
        return os.path.realpath(path) if paths.is_local(path) else paths.absolute(path).rstrip("/")

    if resolved(src) == resolved(dst):
        print(f"error: DST_DATA_DIR {dst} is SRC_DATA_DIR {src} (links followed); give a separate folder",
              file=sys.stderr)
        return 2
    splits, folders = available_splits(src, args.splits)
    if not splits:
        print(f"error: {src}: none of {', '.join(f'{s}.csv' for s in args.splits)} found, and no class folders",
              file=sys.stderr)
        return 2
    try:
        records = {split: read_split(src, split, **args.split_options) for split in splits}
    except AnnotationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths.makedirs(dst)
    root = video_root(src, args.cfg_node, folders)
    rows, failures = [], []
    for split in splits:
        print(f"{split}: {len(records[split])} videos -> {dst} (short side {args.short_side}, "
              f"keyframe every {args.keyframe_interval} frames)", flush=True)
        results = prepare_split(records[split], root, dst, args.short_side, args.keyframe_interval, args.workers,
                                args.crf, args.preset, progress=progress_printer(split),
                                tune=None if args.tune.lower() == "none" else args.tune,
                                skippable_odd_frames=args.skippable_odd_frames)
        kept = [(r, res) for r, res in zip(records[split], results) if res.status != "failed"]
        if folders:  # PySlowFast lines naming the outputs, relative to DST_DATA_DIR
            write_slowfast_csv([VideoRecord(res.dst, r.label) for r, res in kept], os.path.join(dst, f"{split}.csv"))
        else:
            write_csv_subset(os.path.join(src, f"{split}.csv"), [r for r, _ in kept], os.path.join(dst, f"{split}.csv"))
        facts = probe_outputs(results, args.workers)
        save_metadata(metadata_path(dst, split), facts)
        short = sum(f.num_frames < args.clip_span for f in facts)
        count = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
        rows.append([split, count["done"], count["skipped"], count["failed"], len(kept), short])
        failures += [f"  {split}: {r.src}: {r.reason}" for r in results if r.status == "failed"][:args.show]
    names = (write_class_names(src, dst, args.split_options["class_names_file"], args.split_options["val_fraction"])
             if folders else copy_class_names(src, dst))
    print(markdown_table(["split", "done", "skipped (existing)", "failed", f"in {dst} CSV",
                          f"shorter than a clip ({args.clip_span} frames)"], rows))
    if failures:
        print("\nfailed (left out of the CSVs):\n" + "\n".join(failures))
    print(f"\nwrote {', '.join(f'{s}.csv' for s in splits)}{', classnames.json' if names else ''} and the stream "
          f"facts ({', '.join(f'{s}.meta.json' for s in splits)}) to {dst}")
    return 0


def write_class_names(src: str, dst: str, class_names_file: str = "", val_fraction: float = 0.1) -> str:
    """dst/classnames.json for a class-folder source: its class names as training reads them (a names file's
    order when there is one, else the sorted folder names), the indexing the written CSV's labels use."""
    path = os.path.join(dst, "classnames.json")
    atomic_write_text(path, json.dumps(read_class_names(src, class_names_file, val_fraction)[0], indent=1) + "\n")
    return path


def console_main() -> None:
    """Entry point of the ``rs3d-prepare-data`` console command (same as tools/prepare_dataset.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
