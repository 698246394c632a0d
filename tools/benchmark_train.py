#!/usr/bin/env python
"""Training speed of one or more configs on this device: the trainer's full step (bf16/fp32, label-smoothed
loss, Nesterov SGD with decay groups, EMA update) with AMP, channels-last and torch.compile switched on and off.

Prints clips/s, ms per step, peak memory, speed-up over the first setting and, on a GPU, model FLOPs
utilisation (achieved FLOP/s over the device's dense bf16 peak; fp32 rows against the TF32 peak; a training step
is 6x fvcore's multiply-add count in FLOPs).

The first row of each config is a PySlowFast-style step (eager fp32, plain SGD, no EMA); ``--pipeline 0 1`` adds
rows fed by the real training loader (decode + augmentation) to see what the data pipeline costs.

    python tools/benchmark_train.py --cfg configs/kinetics400/rs3d_50.yaml configs/kinetics400/slow_r50.yaml \\
        --amp 1 --channels-last 1 --compile 0 1 --pipeline 0 1 --batch-size 8 DATA.PATH_TO_DATA_DIR /data/k400
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
from rs3d.studies.speed import (
    TRAIN_FLOPS_PER_MAC,
    SpeedSetting,
    build_for_clip,
    mfu,
    peak_tflops,
    real_batches,
    time_in_subprocess,
)
from rs3d.utils.complexity import count_gflops
from rs3d.utils.tables import markdown_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", nargs="+", required=True, help="config file(s)")
    parser.add_argument("--frames", type=int, help="clip length (default: the config's DATA.NUM_FRAMES)")
    parser.add_argument("--crop", type=int, help="crop size (default: the config's DATA.TRAIN_CROP_SIZE)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per step")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--iters", type=int, default=5, help="timed steps per row")
    parser.add_argument("--amp", nargs="+", type=int, default=[0, 1], choices=[0, 1], help="bf16 autocast off/on")
    parser.add_argument("--channels-last", nargs="+", type=int, default=[0, 1], choices=[0, 1],
                        help="channels_last_3d off/on")
    parser.add_argument("--compile", nargs="+", type=int, default=[0], choices=[0, 1], help="torch.compile off/on")
    parser.add_argument("--pipeline", nargs="+", type=int, default=[0], choices=[0, 1],
                        help="1: feed every step from the config's real training loader (DATA.PATH_TO_DATA_DIR, "
                             "workers as configured) instead of a synthetic batch")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the PySlowFast-style row (eager fp32, plain SGD, no EMA, synthetic input) that "
                             "the speed-up column is relative to")
    cli.add_opts_argument(parser)
    args = parser.parse_args()
    rows = []
    on_gpu = args.device.startswith("cuda")
    gpu_name = torch.cuda.get_device_name(torch.device(args.device)) if on_gpu else ""
    for path in args.cfg:
        cfg = load_config(path, args.opts)
        frames, crop = args.frames or cfg.DATA.NUM_FRAMES, args.crop or cfg.DATA.TRAIN_CROP_SIZE
        factory = functools.partial(build_for_clip, path, args.opts, frames, crop)
        batches = functools.partial(real_batches, path, args.opts, frames, crop, args.batch_size, args.device)
        gmacs = count_gflops(factory().eval(), (frames, crop, crop))  # fvcore: multiply-adds
        name, base = os.path.basename(path), None
        combos = [(0, 0, 0, 0, False)] if not args.no_baseline else []
        combos += [(*c, True) for c in itertools.product(args.amp, args.channels_last, args.compile, args.pipeline)]
        for amp, channels_last, compiled, pipeline, recipe in combos:
            setting = SpeedSetting(frames, crop, args.batch_size, args.device, bool(amp), bool(channels_last),
                                   bool(compiled), train=True, recipe=recipe, warmup=3 if compiled else 2,
                                   iters=args.iters)
            label = setting.describe() + (", real data" if pipeline else ", synthetic") + \
                ("" if recipe else " (PySlowFast-style: eager fp32, plain SGD, no EMA)")
            result = time_in_subprocess(factory, setting, batches if pipeline else None)
            if "error" in result:
                rows.append([name, label, "failed", "-", "-", "-", "-", result["error"]])
                continue
            base = base or result["clips_per_s"]
            utilisation = mfu(result["clips_per_s"], gmacs, peak_tflops(gpu_name, bool(amp)) if on_gpu else None)
            rows.append([name, label, f"{result['clips_per_s']:.2f}", f"{result['step_s'] * 1e3:.0f}",
                         f"{result['peak_mib']:.0f}", f"{result['clips_per_s'] / base:.2f}",
                         f"{result['clips_per_s'] * TRAIN_FLOPS_PER_MAC * gmacs:.1f}",
                         f"{100 * utilisation:.1f}%" if utilisation is not None else "n/a"])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(markdown_table(["config", "setting", "clips/s", "ms/step", "peak MiB", "x first row", "GFLOP/s", "MFU"],
                         rows))
    device = gpu_name if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"\ndevice: {device}; training FLOPs per clip = {TRAIN_FLOPS_PER_MAC} x fvcore's count (multiply-adds); "
          "each row in its own process, with the trainer's cuDNN/TF32 settings.")
    return 0


if __name__ == "__main__":
    cli.run(main)
