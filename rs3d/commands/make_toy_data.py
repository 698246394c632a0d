"""Write the embedded toy motion dataset (8 classes told apart only by motion) as H.264 mp4s + PySlowFast CSVs.

    python tools/make_toy_dataset.py data/toy                     # 40/10/10 videos per class, 160x120, 48 frames
    python tools/make_toy_dataset.py /tmp/toy --train-per-class 100 --seed 1 --workers 4
"""

from __future__ import annotations

import argparse
import os

from rs3d.commands import base as cli
from rs3d.data.prep.toy import TOY_CLASSES, generate_toy_dataset


def parse_args() -> argparse.Namespace:
    """Command-line options; the defaults are generate_toy_dataset's."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", help="dataset root (videos/, train.csv, val.csv, test.csv, classnames.json)")
    parser.add_argument("--train-per-class", type=int, default=40, help="training videos per class")
    parser.add_argument("--val-per-class", type=int, default=10, help="validation videos per class")
    parser.add_argument("--test-per-class", type=int, default=10, help="test videos per class")
    parser.add_argument("--num-frames", type=int, default=48, help="frames per video")
    parser.add_argument("--width", type=int, default=160, help="frame width in pixels (even)")
    parser.add_argument("--height", type=int, default=120, help="frame height in pixels (even)")
    parser.add_argument("--fps", type=int, default=30, help="frames per second")
    parser.add_argument("--seed", type=int, default=0, help="base seed; each video is seeded from (seed, split, "
                        "label, index), so output does not depend on --workers")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: os.cpu_count())")
    return parser.parse_args()


def main() -> None:
    """Generate the dataset and print what was written and how long it took."""
    args = parse_args()
    summary = generate_toy_dataset(args.output_dir, train_per_class=args.train_per_class,
                                   val_per_class=args.val_per_class, test_per_class=args.test_per_class,
                                   num_frames=args.num_frames, height=args.height, width=args.width, fps=args.fps,
                                   seed=args.seed, workers=args.workers)
    root, size = summary["root"], summary["bytes"]
    counts = ", ".join(f"{split} {n}" for split, n in summary["counts"].items())
    print(f"wrote {summary['videos']} videos ({counts}; {len(TOY_CLASSES)} classes, {args.width}x{args.height}, "
          f"{args.num_frames} frames at {args.fps} fps, {size / 2**20:.1f} MiB) to {root}")
    print(f"  {os.path.join(root, 'train.csv')}, val.csv, test.csv, classnames.json, .complete")
    print(f"took {summary['seconds']:.1f} s with {summary['workers']} worker(s)")


def console_main() -> None:
    """Entry point of the ``rs3d-make-toy-data`` console command (same as tools/make_toy_dataset.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
