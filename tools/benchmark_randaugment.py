#!/usr/bin/env python
"""RandAugment speed on one thread: torchvision's v2.RandAugment vs rs3d's FastRandAugment, per op and end to end,
on a uint8 clip, as a Markdown table (best-of-N CPU ms of interleaved runs and the speed-up; CPU time rather than
wall time by default, so that other processes on a shared machine distort it less).

    python tools/benchmark_randaugment.py --frames 32 --size 224 --magnitude 10
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from rs3d.data.randaugment import FastRandAugment

CLOCK = time.process_time  # CPU time of this (single-threaded) process: what a busy DataLoader worker pays


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds for one call."""
    start = CLOCK()
    fn()
    return (CLOCK() - start) * 1e3


def compare(ref: Callable[[], object], fast: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` ms of ``ref`` and ``fast``, run alternately after one warm-up each (the minimum is the
    least disturbed by other processes on a shared machine)."""
    ref(), fast()
    pairs = [(timed(ref), timed(fast)) for _ in range(repeats)]
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


def seeded(transform: v2.RandAugment, video: torch.Tensor, seed: int) -> Callable[[], object]:
    """A call of ``transform`` that always makes the random draws of ``seed``."""
    def call() -> object:
        torch.manual_seed(seed)
        return transform(video)
    return call


def main() -> None:
    """Time every op and the full transform, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--magnitude", type=int, default=10, help="RandAugment magnitude bin (of 31)")
    parser.add_argument("--num-ops", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per op and implementation")
    parser.add_argument("--clips", type=int, default=50, help="seeded random draws for the full transform")
    parser.add_argument("--wall", action="store_true", help="time wall-clock instead of CPU time (quiet machines)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    global CLOCK
    CLOCK = time.perf_counter if args.wall else time.process_time

    video = tv_tensors.Video(torch.randint(0, 256, (args.frames, 3, args.size, args.size), dtype=torch.uint8,
                                           generator=torch.Generator().manual_seed(0)))
    ref = v2.RandAugment(num_ops=args.num_ops, magnitude=args.magnitude)
    fast = FastRandAugment(num_ops=args.num_ops, magnitude=args.magnitude)

    print(f"RandAugment on a ({args.frames}, 3, {args.size}, {args.size}) uint8 clip, magnitude {args.magnitude}, "
          f"1 thread, {'wall' if args.wall else 'CPU'} ms, best of {args.repeats} interleaved runs "
          f"(3 per clip for the full transform)\n")
    print("| op | magnitude | torchvision ms | fast ms | speed-up |")
    print("|---|---:|---:|---:|---:|")
    ref_ms, fast_ms = [], []
    for op, (magnitudes_fn, _) in ref._AUGMENTATION_SPACE.items():
        magnitudes = magnitudes_fn(ref.num_magnitude_bins, args.size, args.size)
        magnitude = 0.0 if magnitudes is None else float(magnitudes[args.magnitude])
        t_ref, t_fast = compare(
            lambda op=op, m=magnitude: ref._apply_image_or_video_transform(video, op, m, ref.interpolation, ref._fill),
            lambda op=op, m=magnitude: fast._apply_image_or_video_transform(video, op, m, fast.interpolation,
                                                                            fast._fill),
            args.repeats)
        ref_ms.append(t_ref)
        fast_ms.append(t_fast)
        print(f"| {op} | {magnitude:.3g} | {t_ref:.2f} | {t_fast:.2f} | {t_ref / max(t_fast, 1e-3):.1f}x |")
    mean_ref, mean_fast = statistics.mean(ref_ms), statistics.mean(fast_ms)
    print(f"| *mean over ops* | | {mean_ref:.2f} | {mean_fast:.2f} | {mean_ref / mean_fast:.1f}x |")

    full = [compare(seeded(ref, video, seed), seeded(fast, video, seed), 3) for seed in range(args.clips)]
    full_ref, full_fast = statistics.mean(t[0] for t in full), statistics.mean(t[1] for t in full)
    print(f"| **full RandAugment(num_ops={args.num_ops})**, mean of {args.clips} seeded clips | | {full_ref:.2f} | "
          f"{full_fast:.2f} | {full_ref / full_fast:.1f}x |")


if __name__ == "__main__":
    main()
