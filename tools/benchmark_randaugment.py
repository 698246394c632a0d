#!/usr/bin/env python
"""RandAugment speed on one thread, both policies side by side: torchvision's v2.RandAugment vs rs3d's FastRandAugment
(DATA.RANDAUGMENT_POLICY torchvision, bit-identical to v2) and rs3d's TFRandAugment (policy tf, TF Model Garden's
ops), per op and end to end, on a uint8 clip, as a Markdown table (best-of-N CPU ms of interleaved runs; CPU time
rather than wall time by default, so that other processes on a shared machine distort it less).

    python tools/benchmark_randaugment.py --frames 32 --size 224 --magnitude 10 --tf-magnitude 10
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
from rs3d.data.randaugment_tf import TF_OPS, TFRandAugment, tf_augment_op, tf_op_argument

CLOCK = time.process_time  # CPU time of this (single-threaded) process: what a busy DataLoader worker pays


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds for one call."""
    start = CLOCK()
    fn()
    return (CLOCK() - start) * 1e3


def compare(functions: list[Callable[[], object] | None], repeats: int) -> list[float | None]:
    """Best-of-``repeats`` ms of each function (None: not timed), run in turn after one warm-up each (the minimum
    is the least disturbed by other processes on a shared machine)."""
    present = [f for f in functions if f is not None]
    for f in present:
        f()
    rounds = [[timed(f) for f in present] for _ in range(repeats)]
    best = iter([min(r[i] for r in rounds) for i in range(len(present))])
    return [None if f is None else next(best) for f in functions]


def seeded(transform: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor, seed: int) -> Callable[[], object]:
    """A call of ``transform`` that always makes the random draws of ``seed``."""
    def call() -> object:
        torch.manual_seed(seed)
        return transform(video)
    return call


def cell(ms: float | None) -> str:
    return "" if ms is None else f"{ms:.2f}"


def main() -> None:
    """Time every op of both policies and the full transforms, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--magnitude", type=int, default=10, help="torchvision policy: magnitude bin (of 31)")
    parser.add_argument("--tf-magnitude", type=float, default=10.0, help="tf policy: magnitude on TF's 0-10 scale")
    parser.add_argument("--num-ops", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per op and implementation")
    parser.add_argument("--clips", type=int, default=50, help="seeded random draws for the full transforms")
    parser.add_argument("--wall", action="store_true", help="time wall-clock instead of CPU time (quiet machines)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    global CLOCK
    CLOCK = time.perf_counter if args.wall else time.process_time

    video = tv_tensors.Video(torch.randint(0, 256, (args.frames, 3, args.size, args.size), dtype=torch.uint8,
                                           generator=torch.Generator().manual_seed(0)))
    plain = video.as_subclass(torch.Tensor)
    ref = v2.RandAugment(num_ops=args.num_ops, magnitude=args.magnitude)
    fast = FastRandAugment(num_ops=args.num_ops, magnitude=args.magnitude)
    tf = TFRandAugment(num_layers=args.num_ops, magnitude=args.tf_magnitude)
    box = (0, max(1, args.frames // 4), args.size // 4, 3 * args.size // 4, args.size // 4, 3 * args.size // 4)

    print(f"RandAugment on a ({args.frames}, 3, {args.size}, {args.size}) uint8 clip, 1 thread, "
          f"{'wall' if args.wall else 'CPU'} ms, best of {args.repeats} interleaved runs (3 per clip for the full "
          f"transforms); policy torchvision at bin {args.magnitude} of 31, policy tf at {args.tf_magnitude:g} of 10\n")
    print("| op | torchvision arg | torchvision v2 ms | rs3d fast ms | speed-up | tf arg | rs3d tf ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ops = list(ref._AUGMENTATION_SPACE) + [op for op in TF_OPS if op not in ref._AUGMENTATION_SPACE]
    times: list[list[float | None]] = []
    for op in ops:
        functions: list[Callable[[], object] | None] = [None, None, None]
        tv_arg = tf_arg = ""
        if op in ref._AUGMENTATION_SPACE:
            magnitudes = ref._AUGMENTATION_SPACE[op][0](ref.num_magnitude_bins, args.size, args.size)
            magnitude = 0.0 if magnitudes is None else float(magnitudes[args.magnitude])
            tv_arg = f"{magnitude:.3g}"
            functions[0] = lambda op=op, m=magnitude: ref._apply_image_or_video_transform(
                video, op, m, ref.interpolation, ref._fill)
            functions[1] = lambda op=op, m=magnitude: fast._apply_image_or_video_transform(
                video, op, m, fast.interpolation, fast._fill)
        if op in TF_OPS:
            argument = tf_op_argument(op, args.tf_magnitude)
            tf_arg = "box" if op == "Cutout" else "" if argument is None else f"{argument:.3g}"
            functions[2] = lambda op=op: tf_augment_op(plain, op, args.tf_magnitude, box=box)
        row = compare(functions, args.repeats)
        times.append(row)
        speed_up = f"{row[0] / max(row[1], 1e-3):.1f}x" if row[1] is not None else ""
        print(f"| {op} | {tv_arg} | {cell(row[0])} | {cell(row[1])} | {speed_up} | {tf_arg} | {cell(row[2])} |")
    means = [statistics.mean(r[i] for r in times if r[i] is not None) for i in range(3)]
    print(f"| *mean over ops* | | {means[0]:.2f} | {means[1]:.2f} | {means[0] / means[1]:.1f}x | | {means[2]:.2f} |")

    full = [compare([seeded(t, video, seed) for t in (ref, fast, tf)], 3) for seed in range(args.clips)]
    total = [statistics.mean(t[i] for t in full) for i in range(3)]
    print(f"| **full RandAugment({args.num_ops} ops)**, mean of {args.clips} seeded clips | | {total[0]:.2f} | "
          f"{total[1]:.2f} | {total[0] / total[1]:.1f}x | | {total[2]:.2f} |")


if __name__ == "__main__":
    main()
