"""Compare configs side by side on this device, with accuracy over seeds, confidence intervals and a checked budget.

    rs3d-compare --train-toy --seeds 3        # RS3D-tiny, R3D-tiny, C2D-tiny, 3 seeds each, then compare
    rs3d-compare --cfg A.yaml B.yaml --seeds 3 [KEY VALUE ...]   # train (or reuse) OUTPUT/<config>/seed<k>, compare
    rs3d-compare --cfg A.yaml B.yaml --runs 'runs/a/seed*' runs/b/s0,runs/b/s1     # collect finished runs
    rs3d-compare --cfg A.yaml B.yaml          # size, FLOPs and speed only
    (tools/compare.py is the same command)

--runs: one item per --cfg, in the same order; each item is one run folder, a comma-separated list of them or a
quoted glob (several seeds of that config, e.g. trained in parallel with `rs3d-train ... SEED k`); "-" for none.
--seeds N trains the configs without --runs N times (SEED 0..N-1, same data and budget) under
OUTPUT_DIR/<config name>/seed<k>: finished folders are reused, unfinished ones resume, and a folder written with
another budget is refused.

Per config: mean ± std over seeds of single-view (last validation, EMA model) and multi-view (final test) top-1,
top-5 and mean class accuracy, plus parameters, GFLOPs per view, inference clips/s at batch 1 and at the largest
batch that fits (doubling up to --max-batch), training clips/s and peak memory (each speed in its own process).
Per pair (each config against the first; --all-pairs for every pair): the difference in multi-view top-1 with a
95% percentile-bootstrap interval that resamples the test videos (the same for both configs) and each config's
seeds, in words when it includes zero, and McNemar's exact test when both configs have a single run.

Equal budget, checked: every run's config.yaml must agree on data, schedule, clip, crop, test views, precision and
the rest of the recipe; keys under MODEL. (but MODEL.NUM_CLASSES and MODEL.INIT) are the architecture and may
differ. A difference elsewhere is refused with the keys named, unless --allow-different KEY ... (a key or a
prefix such as SOLVER) says it is the point. All runs must have tested the same videos with the same class names
and trained the same number of steps (metrics.jsonl; equal epochs and batch, so equally large training splits).

Writes OUTPUT_DIR/compare.md, .json and .csv (configs), compare_runs.csv (every seed), compare_pairs.csv
(intervals), compare_budget.csv (held-equal and differing keys) and speed_accuracy.png (error bars: std over seeds).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import torch

from rs3d.commands import base as cli
from rs3d.config.catalog import config_root
from rs3d.studies.budget import check_equal_budget
from rs3d.studies.compare import COSTS, SpeedBudget, compare_row, plot_speed_accuracy
from rs3d.studies.compare_report import (
    SPEED_KEYS,
    build_report,
    compare_pairs,
    config_stats,
    markdown,
    write_reports,
)
from rs3d.studies.runs import load_run
from rs3d.studies.seeds import config_name, train_seeds
from rs3d.utils import paths
from rs3d.utils.errors import UserInputError

TOY = ["toy/rs3d_tiny.yaml", "toy/r3d_tiny.yaml", "toy/c2d_tiny.yaml"]  # under the shipped configs


def expand_runs(item: str) -> list[str]:
    """One --runs item: comma-separated folders and globs, each glob sorted; every folder must exist."""
    dirs: list[str] = []
    for part in filter(None, item.split(",")):
        if glob.has_magic(part):
            found = sorted(p for p in glob.glob(part) if os.path.isdir(p))
            if not found:
                raise UserInputError(f"--runs {part}: matches no folder")
            dirs += found
        elif not paths.isdir(part):
            raise UserInputError(f"--runs {part}: no such run folder")
        else:
            dirs.append(part)
    return dirs


def unique_names(configs: list[str]) -> list[str]:
    """Table names: the config file names, with ' (2)', ' (3)' added to repeats."""
    names: list[str] = []
    for config in configs:
        name, k = config_name(config), 2
        while name in names:
            name, k = f"{config_name(config)} ({k})", k + 1
        names.append(name)
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    cuda = torch.cuda.is_available()
    parser = cli.make_parser(__doc__, "rs3d-compare")
    parser.add_argument("--cfg", "--cfgs", dest="cfgs", nargs="+", default=[], metavar="FILE",
                        help="config files to compare (--cfgs is the older spelling)")
    parser.add_argument("--runs", nargs="+", default=[], metavar="DIRS",
                        help="per config: a run folder, DIR1,DIR2,... or a quoted glob; '-' for none")
    parser.add_argument("--seeds", type=int, help="train (or reuse) this many seeds of each config without --runs")
    parser.add_argument("--train-toy", action="store_true", help="add the toy RS3D, R3D and C2D and train them "
                        "(--seeds of them; 1 by default)")
    parser.add_argument("--toy-epochs", type=int, help="shorter toy training (default: the configs' budget)")
    parser.add_argument("--allow-different", nargs="+", default=[], metavar="KEY",
                        help="config keys (or prefixes) whose difference between configs is the point")
    parser.add_argument("--all-pairs", action="store_true", help="every pair, not each against the first")
    parser.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--bootstrap-seed", type=int, default=0)
    parser.add_argument("--no-speed", action="store_true", help="skip the speed and memory measurements")
    parser.add_argument("--output-dir", default="output/compare", help="where trained seeds and reports go")
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=64 if cuda else 8)
    parser.add_argument("--train-batch", type=int, default=8 if cuda else 2)
    parser.add_argument("--csv", help="configs CSV (default OUTPUT_DIR/compare.csv); the other reports share its stem")
    parser.add_argument("--plot", help="PNG path (default: OUTPUT_DIR/speed_accuracy.png)")
    parser.add_argument("--plot-x", default="infer clips/s b1", choices=[*SPEED_KEYS[2:4], SPEED_KEYS[5], *COSTS],
                        help="the plot's x axis (default: inference clips/s at batch 1; GFLOPs/view does not "
                        "depend on the machine's load)")
    cli.add_opts_argument(parser)
    args = parser.parse_args(argv)
    for name in ("runs", "cfgs"):  # "--cfg A.yaml B.yaml SOLVER.MAX_EPOCH 2": the overrides are not configs
        items, overrides = cli.split_overrides(getattr(args, name))
        setattr(args, name, items)
        args.opts = overrides + args.opts
    if args.train_toy:
        args.cfgs += [os.path.join(config_root(), c) for c in TOY]
    if not args.cfgs:
        parser.error("give --cfg or --train-toy")
    if len(args.runs) > len(args.cfgs):
        parser.error(f"{len(args.runs)} --runs items for {len(args.cfgs)} configs")
    if args.max_batch < 1 or args.iters < 1 or args.train_batch < 1:
        raise UserInputError(f"--max-batch must be at least 1, got {args.max_batch}" if args.max_batch < 1 else
                             f"--iters and --train-batch must be at least 1, got {args.iters} and {args.train_batch}")
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if not 0 < args.confidence < 1 or args.resamples < 100:
        parser.error("--confidence must be in (0, 1) and --resamples at least 100")
    return args


def collect_runs(args: argparse.Namespace, names: list[str]) -> dict[str, list[str]]:
    """{config name: run folders}: from --runs, or trained/reused seeds for the configs that have none."""
    items = args.runs + ["-"] * (len(args.cfgs) - len(args.runs))
    dirs = {name: expand_runs(item) for name, item in zip(names, items) if item != "-"}
    toy = set(args.cfgs[-len(TOY):]) if args.train_toy else set()
    to_train = [(c, n) for c, n in zip(args.cfgs, names) if n not in dirs and (args.seeds or c in toy)]
    if len({config_name(c) for c, _ in to_train}) < len(to_train):
        raise UserInputError("two configs to train share a file name (and so a run folder): give --runs")
    epochs = ["SOLVER.MAX_EPOCH", str(args.toy_epochs), "TRAIN.EVAL_PERIOD", str(args.toy_epochs)]
    for configs, opts in (([c for c, _ in to_train if c not in toy], args.opts),
                          ([c for c, _ in to_train if c in toy], args.opts + (epochs if args.toy_epochs else []))):
        if configs:
            trained = train_seeds(configs, args.output_dir, args.seeds or 1, opts,
                                  log=lambda line: print(line, file=sys.stderr, flush=True))
            dirs.update({n: trained[config_name(c)] for c, n in to_train if c in configs})
    return {name: dirs[name] for name in names if name in dirs}


def main(argv: list[str] | None = None) -> int:
    start = time.time()
    args = parse_args(argv)
    names = unique_names(args.cfgs)
    run_dirs = collect_runs(args, names)
    trained = time.time()
    groups = {name: [load_run(d) for d in dirs] for name, dirs in run_dirs.items()}
    budget = check_equal_budget(groups, args.allow_different) if groups else None
    pairs = compare_pairs(groups, budget.videos, args.all_pairs, args.resamples, args.confidence,
                          args.bootstrap_seed) if budget and len(groups) > 1 else []
    speed = SpeedBudget(args.device, args.iters, args.max_batch, args.train_batch)
    rows = []
    for config, name in zip(args.cfgs, names):
        row = compare_row(config, args.opts, speed, name, speed=not args.no_speed)
        rows.append({**row, **(config_stats(groups[name]) if name in groups else {})})
        print(f"measured {name}", file=sys.stderr, flush=True)
    report = build_report(rows, groups, budget, pairs, args.resamples)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"CPU ({torch.get_num_threads()} threads)"
    report["device"] = device
    report["wall_seconds"] = {"total": time.time() - start, "training": trained - start}
    paths.makedirs(args.output_dir)
    stem = os.path.splitext(args.csv or os.path.join(args.output_dir, "compare.csv"))[0]
    written = write_reports(report, stem)
    print(markdown(report))
    timing = "" if args.no_speed else (f"inference at the test crop, training at the train crop (batch "
                                       f"{args.train_batch}); each speed in its own process; ")
    print(f"device: {device}; {timing}wall time {report['wall_seconds']['total']:.0f}s "
          f"({report['wall_seconds']['training']:.0f}s training or collecting runs).")
    plot_path = args.plot or os.path.join(args.output_dir, "speed_accuracy.png")
    plotted = plot_speed_accuracy(rows, plot_path, speed_key=args.plot_x) or \
        plot_speed_accuracy(rows, plot_path, "top-1 1-view", args.plot_x)
    print("wrote " + ", ".join(written) + (f" and {plot_path}" if plotted else " (no plot: it needs speed and accuracy)"))
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-compare`` console command (same as tools/compare.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
