"""Side-by-side comparison of configs on this device: size, FLOPs, speed and memory, and the speed-vs-accuracy plot.

Speed rows are timed in fresh processes (see ``rs3d.studies.speed``); accuracy over seeds comes from run folders
(``rs3d.studies.runs``) and its statistics from ``rs3d.studies.compare_report``.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from rs3d.config import load_config
from rs3d.models import build_model
from rs3d.studies.speed import SpeedSetting, build_for_clip, time_in_subprocess
from rs3d.utils.atomic import atomic_path
from rs3d.utils.complexity import count_gflops, count_parameters


@dataclass
class SpeedBudget:
    """How hard to time: device, timed iterations, largest inference batch to try, training batch."""

    device: str = "cpu"
    iters: int = 3
    max_batch: int = 8
    train_batch: int = 2


def largest_batch_speed(path: str, opts: list[str], frames: int, crop: int, budget: SpeedBudget
                        ) -> tuple[float | None, int | None]:
    """Inference clips/s at the largest batch (2, 4, 8... up to ``max_batch``; 1 when that is 1) that still runs;
    (speed, batch), or (None, None) when none ran, never a made-up 0 clips/s."""
    best, best_batch, batch = 0.0, 0, min(2, budget.max_batch)
    factory = functools.partial(build_for_clip, path, opts, frames, crop)
    while batch <= budget.max_batch:
        fast = budget.device.startswith("cuda")
        result = time_in_subprocess(factory, SpeedSetting(frames, crop, batch, budget.device, amp=fast,
                                                          channels_last=fast, iters=budget.iters))
        if "error" in result:  # out of memory (or anything else): the previous batch was the largest
            break
        if result["clips_per_s"] > best:
            best, best_batch = result["clips_per_s"], batch
        batch *= 2
    return (best, best_batch) if best_batch else (None, None)


def compare_row(path: str, opts: list[str], budget: SpeedBudget, name: str | None = None,
                speed: bool = True) -> dict:
    """Size, FLOPs and (unless ``speed`` is False) measured speed and training memory of one config."""
    cfg = load_config(path, opts)
    frames, crop = cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE
    model = build_model(cfg)
    row = {"model": name or os.path.splitext(os.path.basename(path))[0],
           "params (M)": count_parameters(model) / 1e6, "GFLOPs/view": count_gflops(model, (frames, crop, crop))}
    del model
    if not speed:
        return row
    factory = functools.partial(build_for_clip, path, opts, frames, crop)
    fast = budget.device.startswith("cuda")  # GPU rows run as the trainer would: bf16 autocast, channels-last
    single = time_in_subprocess(factory, SpeedSetting(frames, crop, 1, budget.device, amp=fast, channels_last=fast,
                                                      iters=budget.iters))
    row["infer clips/s b1"] = single.get("clips_per_s")
    row["infer clips/s max"], row["max batch"] = largest_batch_speed(path, opts, frames, crop, budget)
    train_crop = cfg.DATA.TRAIN_CROP_SIZE
    train_factory = functools.partial(build_for_clip, path, opts, frames, train_crop)
    train = time_in_subprocess(train_factory, SpeedSetting(frames, train_crop, budget.train_batch, budget.device,
                                                           amp=fast, channels_last=fast, train=True, recipe=True,
                                                           iters=budget.iters))
    row["train clips/s"], row["train peak MiB"] = train.get("clips_per_s"), train.get("peak_mib")
    return row


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated by another (higher-or-equal x and y, one strictly), sorted by x."""
    front = [i for i, (x, y) in enumerate(points)
             if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)]
    return sorted(front, key=lambda i: points[i][0])


COSTS = ("GFLOPs/view", "params (M)", "train peak MiB")  # plot x-axes where lower is better


def plot_speed_accuracy(rows: list[dict], path: str, accuracy_key: str = "top-1 multi-view",
                        speed_key: str = "infer clips/s b1") -> bool:
    """Speed-vs-accuracy figure as PNG: one marker per model with the std over seeds (``<accuracy_key> std``) as
    error bar, the Pareto front of the means drawn; ``speed_key`` may also be a cost in :data:`COSTS` (GFLOPs,
    parameters, memory: lower is better). False when no row has both values."""
    points = [(r[speed_key], r[accuracy_key], r["model"], r.get(f"{accuracy_key} std") or 0.0) for r in rows
              if r.get(speed_key) is not None and r.get(accuracy_key) is not None]
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for x, y, name, std in points:
        ax.errorbar(x, y, yerr=std, fmt="o", markersize=6, capsize=4)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    sign = -1.0 if speed_key in COSTS else 1.0  # the front of a cost axis: cheaper and more accurate
    front = sorted(pareto_front([(sign * x, y) for x, y, _, _ in points]), key=lambda i: points[i][0])
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "--", color="grey", label="Pareto front")
    ax.set_xlabel(f"{speed_key} ({'lower is cheaper' if sign < 0 else 'higher is faster'})")
    seeds = max((r.get("seeds") or 1 for r in rows if r.get(accuracy_key) is not None), default=1)
    ax.set_ylabel(f"{accuracy_key} (%)" + (f", mean ± std over {seeds} seeds" if seeds > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return True
