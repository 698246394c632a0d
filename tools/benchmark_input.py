#!/usr/bin/env python
"""Input vs model, side by side in one run: the training loader's clips/s for several worker counts, and the
model's training-step clips/s on synthetic clips on this device; names the bottleneck.

    python tools/benchmark_input.py --cfg configs/toy/rs3d_tiny.yaml --workers 0 1 2 [KEY VALUE ...]
    python tools/benchmark_input.py --cfg configs/kinetics400/rs3d_50.yaml --workers 8 16 \\
        DATA.PATH_TO_DATA_DIR /data/k400 TRAIN.BATCH_SIZE 8
"""
from __future__ import annotations

import functools

import torch

from rs3d.commands import base as cli
from rs3d.config import load_config
from rs3d.studies.bottleneck import bottleneck, loader_clips_per_s
from rs3d.studies.speed import SpeedSetting, build_for_clip, time_in_subprocess
from rs3d.utils.tables import markdown_table


def main() -> int:
    parser = cli.make_parser(__doc__)
    parser.add_argument("--cfg", required=True, help="config file")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader worker counts to time")
    parser.add_argument("--batches", type=int, default=10, help="timed loader batches per worker count")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="device of the model step")
    parser.add_argument("--iters", type=int, default=5, help="timed model steps")
    cli.add_opts_argument(parser)
    args = parser.parse_args()
    cfg = load_config(args.cfg, args.opts)
    frames, crop, batch = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.TRAIN.BATCH_SIZE
    on_gpu = args.device.startswith("cuda")
    setting = SpeedSetting(frames, crop, batch, args.device, amp=on_gpu, channels_last=on_gpu, train=True,
                           recipe=True, warmup=2, iters=args.iters)
    model = time_in_subprocess(functools.partial(build_for_clip, args.cfg, args.opts, frames, crop), setting)
    if "error" in model:
        print(f"error: model step failed: {model['error']}")
        return 1
    rows = [["model step", setting.describe(), f"{model['clips_per_s']:.1f}", "-"]]
    for workers in args.workers:
        rate = loader_clips_per_s(cfg, workers, args.batches)
        rows.append([f"loader, {workers} workers", f"batch {batch}, {frames}x{crop}x{crop} uint8",
                     f"{rate:.1f}", bottleneck(rate, model["clips_per_s"])])
    print(markdown_table(["what", "setting", "clips/s", "bottleneck at this worker count"], rows))
    return 0


if __name__ == "__main__":
    cli.run(main)
