"""Where a training run's time goes: the loader's clips/s for several worker counts beside the model step's clips/s
on the same device, so a benchmark can name the bottleneck before a long run does."""
from __future__ import annotations

import time

from fvcore.common.config import CfgNode

from rs3d.config import merge_overrides
from rs3d.data import build_loader


def loader_clips_per_s(cfg: CfgNode, workers: int, batches: int, warmup: int = 2) -> float:
    """Training clips/s the loader delivers with ``workers`` worker processes (decode + augment, uint8 out),
    timed over ``batches`` batches after ``warmup`` (worker start-up is not counted)."""
    cfg = cfg.clone()
    cfg.defrost()
    merge_overrides(cfg, ["DATA_LOADER.NUM_WORKERS", str(workers), "DATA_LOADER.PERSISTENT_WORKERS", "False"])
    loader = build_loader(cfg, "train")

    def forever():
        while True:  # a small split: start another epoch
            yield from loader

    stream = forever()
    for _ in range(warmup):
        next(stream)
    start, clips = time.perf_counter(), 0
    for _ in range(batches):
        clips += len(next(stream)["label"])
    seconds = time.perf_counter() - start
    stream.close()
    return clips / max(seconds, 1e-9)


def bottleneck(loader_rate: float, model_rate: float) -> str:
    """Which side limits training, in words."""
    if loader_rate >= model_rate:
        return f"model ({model_rate:.1f} clips/s; the loader has {loader_rate / model_rate:.1f}x headroom)"
    return f"input ({loader_rate:.1f} clips/s; the model could take {model_rate / loader_rate:.1f}x more)"
