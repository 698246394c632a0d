#!/usr/bin/env python
"""RandAugment speed on one thread, both policies side by side: torchvision's v2.RandAugment vs rs3d's FastRandAugment
(DATA.RANDAUGMENT_POLICY torchvision, bit-identical to v2) and rs3d's TFRandAugment (policy tf, TF Model Garden's
ops), per op and end to end, on a uint8 clip, as a Markdown table (best-of-N CPU ms of interleaved runs; CPU time
rather than wall time by default, so that other processes on a shared machine distort it less). For the TF ops the
last column times the batched torch kernel (rs3d.data.augment.batch_kernels, the DATA.AUGMENT_ON_DEVICE path) on the
same single clip: where it is not slower, the per-clip path runs it too instead of a numpy twin ("path" column).

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

from rs3d.data.augment import TF_OPS, FastRandAugment, TFRandAugment, tf_augment_op, tf_batch_op, tf_op_argument
from rs3d.data.augment.tf_kernels import BATCHED_ON_ONE_CLIP
from rs3d.data.augment.tv_spec import TORCHVISION_OPS, HookedRandAugment, torchvision_magnitudes

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
    ref_ops = HookedRandAugment(num_ops=args.num_ops, magnitude=args.magnitude)  # torchvision's kernels, op by op
    fast = FastRandAugment(num_ops=args.num_ops, magnitude=args.magnitude)
    tf = TFRandAugment(num_layers=args.num_ops, magnitude=args.tf_magnitude)
    box = (0, max(1, args.frames // 4), args.size // 4, 3 * args.size // 4, args.size // 4, 3 * args.size // 4)
    boxes = torch.tensor([box])

    print(f"RandAugment on a ({args.frames}, 3, {args.size}, {args.size}) uint8 clip, 1 thread, "
          f"{'wall' if args.wall else 'CPU'} ms, best of {args.repeats} interleaved runs (3 per clip for the full "
          f"transforms); policy torchvision at bin {args.magnitude} of 31, policy tf at {args.tf_magnitude:g} of 10\n")
    print("| op | torchvision arg | torchvision v2 ms | rs3d fast ms | speed-up | tf arg | rs3d tf ms | path | "
          "batched kernel, 1 clip ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    ops = list(TORCHVISION_OPS) + [op for op in TF_OPS if op not in TORCHVISION_OPS]
    times: list[list[float | None]] = []
    for op in ops:
        functions: list[Callable[[], object] | None] = [None, None, None, None]
        tv_arg = tf_arg = path = ""
        if op in TORCHVISION_OPS:
            magnitudes = torchvision_magnitudes(op, ref.num_magnitude_bins, args.size, args.size)[0]
            magnitude = 0.0 if magnitudes is None else float(magnitudes[args.magnitude])
            tv_arg = f"{magnitude:.3g}"
            functions[0] = lambda op=op, m=magnitude: ref_ops.apply_op(video, op, m)
            functions[1] = lambda op=op, m=magnitude: fast.apply_op(video, op, m)
        if op in TF_OPS:
            argument = tf_op_argument(op, args.tf_magnitude)
            tf_arg = "box" if op == "Cutout" else "" if argument is None else f"{argument:.3g}"
            path = "batched" if op in BATCHED_ON_ONE_CLIP else "numpy"
            functions[2] = lambda op=op: tf_augment_op(plain, op, args.tf_magnitude, box=box)
            functions[3] = lambda op=op: tf_batch_op(plain[None], op, args.tf_magnitude,
                                                     boxes=boxes if op == "Cutout" else None)
        row = compare(functions, args.repeats)
        times.append(row)
        speed_up = f"{row[0] / max(row[1], 1e-3):.1f}x" if row[1] is not None else ""
        print(f"| {op} | {tv_arg} | {cell(row[0])} | {cell(row[1])} | {speed_up} | {tf_arg} | {cell(row[2])} | "
              f"{path} | {cell(row[3])} |")
    means = [statistics.mean(r[i] for r in times if r[i] is not None) for i in range(3)]
    print(f"| *mean over ops* | | {means[0]:.2f} | {means[1]:.2f} | {means[0] / means[1]:.1f}x | | {means[2]:.2f} |")

    full = [compare([seeded(t, video, seed) for t in (ref, fast, tf)], 3) for seed in range(args.clips)]
    total = [statistics.mean(t[i] for t in full) for i in range(3)]
    print(f"| **full RandAugment({args.num_ops} ops)**, mean of {args.clips} seeded clips | | {total[0]:.2f} | "
          f"{total[1]:.2f} | {total[0] / total[1]:.1f}x | | {total[2]:.2f} |")


if __name__ == "__main__":
    main()
