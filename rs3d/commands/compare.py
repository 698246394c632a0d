"""Compare configs side by side on this device, as Markdown, CSV and a speed-vs-accuracy plot.

    python tools/compare.py --cfg configs/kinetics400/rs3d_50.yaml configs/kinetics400/slow_r50.yaml \\
        [--runs runs/rs3d_50 runs/slow_r50] [--csv compare.csv] [--plot compare.png]
    python tools/compare.py --train-toy     # train RS3D-tiny, R3D-tiny and C2D-tiny on the toy data, then compare

Columns: parameters, GFLOPs per view (test crop), inference clips/s at batch 1 and at the largest batch that fits
(doubling up to --max-batch), training clips/s and peak memory (the trainer's full step), and, for each run dir
given (same order as --cfgs, "-" for none), single-view and multi-view top-1/top-5.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from rs3d.commands import base as cli
from rs3d.config.catalog import config_root
from rs3d.evaluation import format_summary_table
from rs3d.studies.compare import (
    COLUMNS,
    SpeedBudget,
    compare_row,
    plot_speed_accuracy,
    write_csv,
)
from rs3d.utils import paths

TOY = ["toy/rs3d_tiny.yaml", "toy/r3d_tiny.yaml", "toy/c2d_tiny.yaml"]  # under the shipped configs


def train_toy(output_root: str, epochs: int | None) -> tuple[list[str], list[str]]:
    """Train the three toy configs with the same budget (one after the other); returns (configs, run dirs)."""
    import subprocess

    configs, runs = [os.path.join(config_root(), c) for c in TOY], []
    for config in configs:
        run = os.path.join(output_root, os.path.splitext(os.path.basename(config))[0])
        extra = ["SOLVER.MAX_EPOCH", str(epochs), "TRAIN.EVAL_PERIOD", str(epochs)] if epochs else []
        subprocess.run([sys.executable, "-m", "rs3d.commands.train", "--cfg", config,
                        "OUTPUT_DIR", run, *extra], check=True)
        runs.append(run)
    return configs, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", "--cfgs", dest="cfgs", nargs="+", default=[], metavar="FILE",
                        help="config files to compare (--cfgs is the older spelling)")
    parser.add_argument("--runs", nargs="+", default=[], help="finished run dirs, same order as --cfgs")
    parser.add_argument("--train-toy", action="store_true", help="train the toy RS3D, R3D and C2D first")
    parser.add_argument("--toy-epochs", type=int, help="shorter toy training (default: the configs' budget)")
    parser.add_argument("--output-dir", default="output/compare", help="where --train-toy runs and outputs go")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=64 if torch.cuda.is_available() else 8)
    parser.add_argument("--train-batch", type=int, default=8 if torch.cuda.is_available() else 2)
    parser.add_argument("--csv", help="CSV path (default: OUTPUT_DIR/compare.csv)")
    parser.add_argument("--plot", help="PNG path (default: OUTPUT_DIR/speed_accuracy.png)")
    cli.add_opts_argument(parser)
    args = parser.parse_args()
    cfgs, runs = list(args.cfgs), list(args.runs)
    if args.train_toy:
        toy_cfgs, toy_runs = train_toy(args.output_dir, args.toy_epochs)
        cfgs, runs = cfgs + toy_cfgs, runs + [None] * (len(cfgs) - len(runs)) + toy_runs
    if not cfgs:
        parser.error("give --cfgs or --train-toy")
    if len(runs) > len(cfgs):
        parser.error("more --runs than --cfgs")
    runs += [None] * (len(cfgs) - len(runs))
    budget = SpeedBudget(args.device, args.iters, args.max_batch, args.train_batch)
    rows = []
    for config, run in zip(cfgs, runs):
        rows.append(compare_row(config, args.opts, budget, None if run in (None, "-") else run))
        print(f"measured {rows[-1]['model']}", file=sys.stderr, flush=True)
    paths.makedirs(args.output_dir)
    print(format_summary_table(rows, COLUMNS))
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"CPU ({torch.get_num_threads()} threads)"
    print(f"\ndevice: {device}; inference at the test crop, training at the train crop "
          f"(batch {args.train_batch}); each speed in its own process.")
    csv_path = args.csv or os.path.join(args.output_dir, "compare.csv")
    write_csv(rows, csv_path)
    plot_path = args.plot or os.path.join(args.output_dir, "speed_accuracy.png")
    plotted = plot_speed_accuracy(rows, plot_path) or plot_speed_accuracy(rows, plot_path, "top-1 1-view")
    print(f"wrote {csv_path}" + (f" and {plot_path}" if plotted else " (no accuracy to plot: give --runs)"))
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-compare`` console command (same as tools/compare.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
