#!/usr/bin/env python
"""Data-pipeline clips/s per DataLoader worker (one process, one thread): the rs3d train pipeline against raw decord
on the same frame indices and against pytorchvideo, the rs3d test pipeline against per-view decoding, and random
clips on the stored videos against copies prepared by rs3d.data.prep.reencode (short side 256, keyframe every 16,
x264 tuned for fast decoding).

    python tools/benchmark_data.py                       # 8 generated Kinetics-like videos, 40 clips per row
    python tools/benchmark_data.py --generate 16 --clips 100 --seed 1
    python tools/benchmark_data.py --generate 0 --data-dir my_videos   # every my_videos/original/*.mp4

Pipelines that are compared take turns clip by clip in this one run (the machine is noisy), so read the ratios.
See rs3d/studies/worker_throughput/ for how the rows are measured.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from rs3d.studies.worker_throughput import (
    BenchSetting,
    PytorchvideoPeer,
    Report,
    ensure_videos,
    keyframe_count,
    measure_test,
    measure_train,
)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="output/benchmark_data",
                        help="videos in DIR/original, copies re-encoded as prepare_dataset.py does in "
                             "DIR/prepared_256_k16_fastdecode_skipodd (both reused when present)")
    parser.add_argument("--generate", type=int, default=8, metavar="N",
                        help="make sure N generated videos (10 s, --size, 30 fps, H.264 GOP 250) exist and "
                             "benchmark those; 0 = benchmark every DIR/original/*.mp4 as it is")
    parser.add_argument("--size", default="340x256", metavar="WxH",
                        help="frame size of generated videos (e.g. 1280x720 for raw-download-like originals)")
    parser.add_argument("--clips", type=int, default=40, help="timed clips per train measurement")
    parser.add_argument("--test-videos", type=int, default=4, help="timed videos (x 30 views) per test measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed clips before each train measurement")
    parser.add_argument("--randaug-layers", type=int, default=2, help="RandAugment ops per clip (0: flip only)")
    parser.add_argument("--randaug-magnitude", type=float, default=10, help="RandAugment magnitude")
    parser.add_argument("--randaug-policy", default="torchvision", choices=("tf", "tf_reflect", "torchvision"),
                        help="RandAugment definition of the rs3d rows (pytorchvideo's row runs torchvision's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the video order, crops, starts and augmentation")
    return parser.parse_args()


def log(text: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(text, file=sys.stderr, flush=True)


def main() -> int:
    """Prepare the videos, run every measurement, print the table and the target checks."""
    args = parse_args()
    started = time.perf_counter()
    torch.set_num_threads(1)
    width, height = (int(v) for v in args.size.lower().split("x"))
    originals, prepared = ensure_videos(args.data_dir, args.generate, height=height, width=width, log=log)

    setting = BenchSetting(randaug_layers=args.randaug_layers, randaug_magnitude=args.randaug_magnitude,
                           randaug_policy=args.randaug_policy)
    report = Report()
    log(f"train pipelines: {len(originals)} videos, {args.clips} clips each ...")
    pytorchvideo = PytorchvideoPeer(originals, seed=args.seed, setting=setting)  # a spawned process, stepped clip by clip
    try:
        report.add(*measure_train(originals, prepared, args.clips, seed=args.seed, warmup=args.warmup,
                                  setting=setting, pytorchvideo=pytorchvideo))
    finally:
        pytorchvideo.close()
    log(f"test pipelines: {args.test_videos} videos ...")
    report.add(*measure_test(originals, min(args.test_videos, len(originals)), setting=setting))

    keyframes = [statistics.mean(keyframe_count(p) for p in paths) for paths in (originals, prepared)]
    sizes = [statistics.mean(Path(p).stat().st_size for p in paths) / 2**10 for paths in (originals, prepared)]
    print(report.table())
    print(f"\naugmentation: random-resized crop, flip 0.5, RandAugment {args.randaug_policy} x{args.randaug_layers} "
          f"at magnitude {args.randaug_magnitude:g}.")
    print(f"videos: {len(originals)} in {args.data_dir}; keyframes per video {keyframes[0]:.1f} original, "
          f"{keyframes[1]:.1f} prepared; mean size {sizes[0]:.0f} KiB original, {sizes[1]:.0f} KiB prepared.")
    print("One process, torch.set_num_threads(1), decord num_threads=1. Clips are 32 frames x stride 2 at 224 "
          "(train) or views of 32 frames at 256 (test rows count views). x (2): speed relative to row (2) by wall "
          "time, and by CPU time of the measuring process (all its threads), which other load on the machine "
          "barely moves. Rows (1)+(1c)+(1d)+(2)+(2p)+(3)+(5a)+(5b)+(5c)+(5d) and (4a)+(4b) take turns clip by clip ((3) in a "
          "spawned process). (1) and (5a) read each video's stream facts from the split's metadata file (written "
          "by check_dataset.py and prepare_dataset.py); (1c) probes every video, as a worker's first visit without it. "
          "(1d) and (5d): the worker's share under DATA.AUGMENT_ON_DEVICE (same draws; flip and RandAugment then run "
          "batched on the training device), so their ratio to (1) / (5a) is the loader's clips/s gain per worker.")
    print("\nTargets (speed ratios from this run; PASS needs both wall-clock and CPU time to meet the target):")
    for text, wall, cpu, target, verdict in report.checks():
        print(f"- {text}: {wall:.2f} x wall, {cpu:.2f} x CPU (target >= {target:g} x) {verdict}")
    if "1c" in report.timings:
        print(f"- (info) (1c) rs3d train probing each video vs (2): {report.ratio('1c', '2'):.2f} x wall, "
              f"{report.ratio('1c', '2', cpu=True):.2f} x CPU; vs (3): {report.ratio('1c', '3'):.2f} x wall, "
              f"{report.ratio('1c', '3', cpu=True):.2f} x CPU")
    if "2p" in report.timings:
        print(f"- (info) (2p) rs3d PyAV reader vs (2) raw decord, both on originals: {report.ratio('2p', '2'):.2f} x "
              f"wall, {report.ratio('2p', '2', cpu=True):.2f} x CPU")
    if "5a" in report.timings:
        print(f"- (info) rs3d train on prepared vs originals, (5a) vs (1): {report.ratio('5a', '1'):.2f} x wall, "
              f"{report.ratio('5a', '1', cpu=True):.2f} x CPU; (5a) vs (5b) raw decord on prepared: "
              f"{report.ratio('5a', '5b'):.2f} x wall, {report.ratio('5a', '5b', cpu=True):.2f} x CPU; (5c) rs3d "
              f"reader vs (5b) raw decord, both on prepared: {report.ratio('5c', '5b'):.2f} x wall, "
              f"{report.ratio('5c', '5b', cpu=True):.2f} x CPU")
    print(f"\nwall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
