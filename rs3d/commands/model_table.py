"""Print the model zoo table: parameters, fvcore GFLOPs per view and measured inference speed and memory.

    python tools/model_table.py                       # every config under configs/kinetics400/
    python tools/model_table.py --cfg configs/kinetics400/rs3d_50.yaml --frames 8 --crop 160
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import sys

import torch

from rs3d.commands import base as cli
from rs3d.config import load_config
from rs3d.config.catalog import config_root
from rs3d.models.factory import build_model
from rs3d.studies.speed import SpeedSetting, build_for_clip, time_in_subprocess
from rs3d.utils.complexity import count_gflops, count_parameters
from rs3d.utils.tables import markdown_table


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    zoo = sorted(glob.glob(os.path.join(config_root(), "kinetics400", "*.yaml")))  # shipped configs: package files
    parser.add_argument("--cfg", "--cfgs", dest="cfgs", nargs="+", default=zoo, metavar="FILE",
                        help="config files (default: all of configs/kinetics400/; --cfgs is the older spelling)")
    parser.add_argument("--batch-size", type=int, default=1, help="clips per inference call")
    parser.add_argument("--frames", type=int, default=0, help="timing input frames (default: DATA.NUM_FRAMES)")
    parser.add_argument("--crop", type=int, default=0, help="timing input crop (default: DATA.TRAIN_CROP_SIZE)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations after one warm-up")
    parser.add_argument("--no-speed", action="store_true", help="only parameters and FLOPs")
    cli.add_opts_argument(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    headers = ["config", "arch", "params (M)", "input TxS", "GFLOPs/view train crop", "GFLOPs/view test crop"]
    if not args.no_speed:
        headers += ["clips/s", "peak mem (MiB)", "timed input"]
    rows = []
    for path in args.cfgs:
        cfg = load_config(path, args.opts)
        model = build_model(cfg)
        frames, train_crop, test_crop = cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE
        row = [
            os.path.relpath(path, os.path.dirname(config_root())), cfg.MODEL.ARCH,
            f"{count_parameters(model) / 1e6:.2f}",
            f"{frames}x{cfg.DATA.SAMPLING_RATE}",
            f"{count_gflops(model, (frames, train_crop, train_crop)):.2f} @{train_crop}",
            f"{count_gflops(model, (frames, test_crop, test_crop)):.2f} @{test_crop}",
        ]
        del model
        if not args.no_speed:
            setting = SpeedSetting(frames=args.frames or frames, crop=args.crop or train_crop,
                                   batch_size=args.batch_size, device=args.device, iters=args.iters)
            factory = functools.partial(build_for_clip, path, args.opts, setting.frames, setting.crop)
            result = time_in_subprocess(factory, setting)
            if "error" in result:
                row += ["failed", result["error"], setting.describe()]
            else:
                row += [f"{result['clips_per_s']:.2f}", f"{result['peak_mib']:.0f}", setting.describe()]
        rows.append(row)
        print(" | ".join(row), file=sys.stderr, flush=True)
    print(markdown_table(headers, rows))
    if not args.no_speed:
        cuda = args.device.startswith("cuda")
        memory = "torch.cuda.max_memory_allocated" if cuda else "peak RSS (VmHWM) of the timing process"
        print(f"\nGFLOPs: fvcore, one multiply-add = one FLOP, eval mode. Peak memory: {memory}. "
              f"Threads: {torch.get_num_threads()}.")
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-model-table`` console command (same as tools/model_table.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
