"""Scaling strategies (rs3d/studies/scaling.py): generate configs along one axis or the paper's recommended path, and
print parameters, GFLOPs and measured latency, to show that FLOPs do not predict speed.

    python tools/scaling_table.py --axis width --write-configs configs/scaling     # one axis
    python tools/scaling_table.py --epochs 350                                     # depth + frames (long training)
    python tools/scaling_table.py --axis depth --latency-frames 8 --latency-crop 112   # quick CPU timing
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

import torch

from rs3d.commands import base as cli
from rs3d.config import load_config
from rs3d.config.catalog import config_root
from rs3d.models import build_model
from rs3d.studies.scaling import AXES, along_axis, recommended, spearman, write_config
from rs3d.studies.speed import SpeedSetting, build_for_clip, time_in_subprocess
from rs3d.utils.complexity import count_gflops, count_parameters
from rs3d.utils.tables import markdown_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--axis", choices=AXES, help="vary one axis of RS3D-50 32x224")
    parser.add_argument("--epochs", type=int, default=350, help="training budget for the recommended path")
    parser.add_argument("--cfg", "--base", dest="base", default=os.path.join(config_root(), "kinetics400", "rs3d_50.yaml"),
                        metavar="FILE", help="the config every scaled model starts from (--base is the older "
                        "spelling; default: configs/kinetics400/rs3d_50.yaml)")
    parser.add_argument("--write-configs", help="write one YAML per model into this folder")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--latency-frames", type=int, help="time at this clip length instead of the model's")
    parser.add_argument("--latency-crop", type=int, help="time at this crop instead of the model's")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    models = along_axis(args.axis) if args.axis else recommended(args.epochs)
    rows, flops, latencies = [], [], []
    for model in models:
        opts = model.overrides()
        cfg = load_config(args.base, opts)
        net = build_model(cfg)
        gflops = count_gflops(net, (model.frames, model.crop, model.crop))
        row = [model.name, model.depth, f"{model.width:g}", model.frames, model.crop,
               f"{count_parameters(net) / 1e6:.1f}", f"{gflops:.1f}"]
        del net
        if args.write_configs:
            write_config(model, args.base, args.write_configs)
        if not args.no_latency:
            frames, crop = args.latency_frames or model.frames, args.latency_crop or model.crop
            timed_gflops = gflops if (frames, crop) == (model.frames, model.crop) else \
                count_gflops(build_model(cfg), (frames, crop, crop))
            factory = functools.partial(build_for_clip, args.base, opts, frames, crop)
            result = time_in_subprocess(factory, SpeedSetting(frames, crop, args.batch_size, args.device))
            if "error" in result:
                row += ["failed", "-"]
            else:
                ms = 1e3 * result["step_s"]
                flops.append(timed_gflops)
                latencies.append(ms)
                row += [f"{ms:.0f} @{frames}x{crop}", f"{ms / timed_gflops:.2f}"]
        rows.append(row)
        print(" | ".join(map(str, row)), file=sys.stderr, flush=True)
    headers = ["model", "depth", "width", "frames", "crop", "params (M)", "GFLOPs/view"]
    if not args.no_latency:
        headers += ["latency ms (batch %d)" % args.batch_size, "ms per GFLOP"]
    print(markdown_table(headers, rows))
    if models[0].notes:
        print(f"\nstrategy: {models[0].notes}")
    if len(latencies) > 1:
        per = [ms / g for ms, g in zip(latencies, flops)]
        print(f"\nms per GFLOP ranges {min(per):.2f}-{max(per):.2f} ({max(per) / min(per):.1f}x); rank correlation "
              f"of FLOPs and latency {spearman(flops, latencies):.2f}. Device: "
              f"{torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'}.")
    if args.write_configs:
        print(f"configs written to {args.write_configs}/")
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-scaling-table`` console command (same as tools/scaling_table.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
