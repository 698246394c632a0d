#!/usr/bin/env python
"""Side-by-side model speed on this device: forward+backward (training step) and inference clips/s, with the
speed switches (bf16 autocast, channels_last_3d, torch.compile) on and off, as ratios to the first config.

    python tools/benchmark_models.py --cfgs configs/kinetics400/rs3d_50.yaml configs/kinetics400/slow_r50.yaml \
        --frames 8 --crop 160 --batch-size 2
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import sys

import torch

from rs3d.commands import base as cli
from rs3d.config import load_config
from rs3d.studies.speed import SpeedSetting, build_for_clip, time_in_subprocess
from rs3d.utils.tables import markdown_table


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfgs", nargs="+", required=True, help="config files to compare")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=3, help="timed steps after warm-up")
    parser.add_argument("--modes", nargs="+", default=["train"], choices=["train", "inference"])
    parser.add_argument("--amp", nargs="+", type=int, default=[0], choices=[0, 1], help="bf16 autocast off/on")
    parser.add_argument("--channels-last", nargs="+", type=int, default=[0], choices=[0, 1])
    parser.add_argument("--compile", nargs="+", type=int, default=[0], choices=[0, 1])
    cli.add_opts_argument(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    rows = []
    baseline: dict[tuple, float] = {}
    variants = list(itertools.product(args.modes, args.amp, args.channels_last, args.compile))
    for (mode, amp, channels_last, compiled), path in itertools.product(variants, args.cfgs):
        load_config(path, args.opts)  # fail fast with a one-line config error
        setting = SpeedSetting(frames=args.frames, crop=args.crop, batch_size=args.batch_size,
                               device=args.device, amp=bool(amp), channels_last=bool(channels_last),
                               compile=bool(compiled), train=mode == "train",
                               warmup=3 if compiled else 1, iters=args.iters)
        factory = functools.partial(build_for_clip, path, args.opts, setting.frames, setting.crop)
        result = time_in_subprocess(factory, setting)
        name = os.path.basename(path)
        if "error" in result:
            rows.append([name, setting.describe(), "failed", "-", "-", result["error"]])
            continue
        key = (mode, amp, channels_last, compiled)
        baseline.setdefault(key, result["clips_per_s"])
        rows.append([name, setting.describe(), f"{result['clips_per_s']:.2f}", f"{result['step_s'] * 1e3:.0f}",
                     f"{result['peak_mib']:.0f}", f"{result['clips_per_s'] / baseline[key]:.2f}"])
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(markdown_table(["config", "setting", "clips/s", "ms/step", "peak MiB", "x first config"], rows))
    print(f"\nthreads: {torch.get_num_threads()}; each row timed in its own process.")
    return 0


if __name__ == "__main__":
    cli.run(main)
