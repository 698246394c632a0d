#!/usr/bin/env python
"""EMA update of a model: dispatched ops (kernel launches on a GPU) and time per update, the per-tensor loop
against rs3d's foreach update, side by side in one run.

    python tools/benchmark_ema.py [--depth 50] [--device cpu|cuda] [--iters 20]
"""
from __future__ import annotations

import argparse
import copy
import time

import torch

from rs3d.engine import ModelEma
from rs3d.models import resnet3d_rs
from rs3d.studies.ema_launches import OpCounter, loop_ema_update
from rs3d.utils.tables import markdown_table


def timed(fn, iters: int, device: torch.device) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / iters * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=50, help="RS3D depth")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--iters", type=int, default=20, help="timed updates per method")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = resnet3d_rs(args.depth).to(device)
    ema = ModelEma(model, 0.9999)
    average = copy.deepcopy(ema.module)
    rows = []
    for name, fn in (("per-tensor loop", lambda: loop_ema_update(average, model, 0.9999)),
                     ("rs3d foreach", lambda: ema.update(model))):
        fn()
        with OpCounter() as counter:
            fn()
        rows.append([name, str(counter.count), f"{timed(fn, args.iters, device):.2f}"])
    print(f"RS3D-{args.depth}: {len(model.state_dict())} state tensors, {device}")
    print(markdown_table(["EMA update", "ops per update", "ms per update"], rows))


if __name__ == "__main__":
    main()
