#!/usr/bin/env python
"""Training speed of one or more configs on this device: the trainer's full step (bf16/fp32, label-smoothed
loss, Nesterov SGD with decay groups, EMA update) with AMP, channels-last and torch.compile switched on and off.

Prints clips/s, ms per step, peak memory, speed-up over the first setting and, on a GPU, model FLOPs
utilisation (achieved FLOP/s over the device's dense bf16 peak; fp32 rows against the TF32 peak; a training step
is 6x fvcore's multiply-add count in FLOPs).

    python tools/benchmark_train.py --cfg configs/kinetics400/rs3d_50.yaml configs/kinetics400/slow_r50.yaml \\
        --frames 32 --crop 224 --batch-size 8 --amp 0 1 --channels-last 0 1 --compile 0 1
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
from rs3d.studies.speed import TRAIN_FLOPS_PER_MAC, SpeedSetting, build_for_clip, mfu, peak_tflops, time_in_subprocess
from rs3d.utils.complexity import count_gflops
from rs3d.utils.tables import markdown_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", nargs="+", required=True, help="config file(s)")
    parser.add_argument("--frames", type=int, help="clip length (default: the config's DATA.NUM_FRAMES)")
    parser.add_argument("--crop", type=int, help="crop size (default: the config's DATA.TRAIN_CROP_SIZE)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--amp", nargs="+", type=int, default=[0, 1], choices=[0, 1])
    parser.add_argument("--channels-last", nargs="+", type=int, default=[0, 1], choices=[0, 1])
    parser.add_argument("--compile", nargs="+", type=int, default=[0], choices=[0, 1])
    cli.add_opts_argument(parser)
    args = parser.parse_args()
    rows, first = [], None
    for path in args.cfg:
        cfg = load_config(path, args.opts)
        frames, crop = args.frames or cfg.DATA.NUM_FRAMES, args.crop or cfg.DATA.TRAIN_CROP_SIZE
        factory = functools.partial(build_for_clip, path, args.opts, frames, crop)
        gmacs = count_gflops(factory().eval(), (frames, crop, crop))  # fvcore: multiply-adds
        for amp, channels_last, compiled in itertools.product(args.amp, args.channels_last, args.compile):
            setting = SpeedSetting(frames, crop, args.batch_size, args.device, bool(amp), bool(channels_last),
                                   bool(compiled), train=True, recipe=True, warmup=3 if compiled else 2,
                                   iters=args.iters)
            result = time_in_subprocess(factory, setting)
            name = os.path.basename(path)
            if "error" in result:
                rows.append([name, setting.describe(), "failed", "-", "-", "-", "-", result["error"]])
                continue
            first = first or result["clips_per_s"]
            achieved = result["clips_per_s"] * TRAIN_FLOPS_PER_MAC * gmacs  # GFLOP/s
            on_gpu = args.device.startswith("cuda")
            peak = peak_tflops(torch.cuda.get_device_name(torch.device(args.device)), bool(amp)) if on_gpu else None
            utilisation = mfu(result["clips_per_s"], gmacs, peak)
            rows.append([name, setting.describe(), f"{result['clips_per_s']:.2f}", f"{result['step_s'] * 1e3:.0f}",
                         f"{result['peak_mib']:.0f}", f"{result['clips_per_s'] / first:.2f}", f"{achieved:.1f}",
                         f"{100 * utilisation:.1f}%" if utilisation is not None else "n/a"])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(markdown_table(["config", "setting", "clips/s", "ms/step", "peak MiB", "x first row", "GFLOP/s", "MFU"],
                         rows))
    on_gpu = args.device.startswith("cuda")
    device = torch.cuda.get_device_name() if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"\ndevice: {device}; training FLOPs per clip = {TRAIN_FLOPS_PER_MAC} x fvcore's count (multiply-adds); "
          "each row in its own process, with the trainer's cuDNN/TF32 settings.")
    return 0


if __name__ == "__main__":
    cli.run(main)
