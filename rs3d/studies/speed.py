"""Timing helpers for benchmarks: inference and training-step throughput and peak memory of one model.

Each measurement runs in a fresh spawned process, so CPU peak memory (max RSS) belongs to that model alone
and one model's allocator state cannot slow the next.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from rs3d.utils.runtime import configure_speed, cpu_peak_memory_mb


@dataclass(frozen=True)
class SpeedSetting:
    """How to run a model: input, batch, device and the speed switches."""

    frames: int
    crop: int
    batch_size: int = 1
    device: str = "cpu"
    amp: bool = False  # bf16 autocast
    channels_last: bool = False
    compile: bool = False
    train: bool = False  # forward + backward + SGD step instead of inference
    recipe: bool = False  # the trainer's full step: label-smoothed loss, Nesterov SGD with decay groups, EMA update
    warmup: int = 1
    iters: int = 3

    def describe(self) -> str:
        mode = "train step" if self.train else "inference"
        flags = [f for f, on in (("bf16", self.amp), ("channels_last", self.channels_last),
                                 ("compile", self.compile)) if on]
        return f"{mode}, batch {self.batch_size}, {self.frames}x{self.crop}x{self.crop}, " \
               f"{self.device}{', ' + '+'.join(flags) if flags else ''}"


def real_batches(config_path: str, opts: list[str], frames: int, crop: int, batch_size: int,
                 device: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Picklable source of real training batches for timing processes: the config's training loader (decode,
    augmentation, workers as configured) at this clip size, normalised on ``device``, cycling over epochs."""
    from rs3d.config import load_config
    from rs3d.data import augmentation_on_device, build_loader, build_train_inputs

    sized = [*opts, "DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(crop),
             "TRAIN.BATCH_SIZE", str(batch_size)]
    cfg = load_config(config_path, sized)
    on_device = augmentation_on_device(cfg)  # one answer for both ends of the clip's path
    loader = build_loader(cfg, "train", augment_on_device=on_device)
    inputs = build_train_inputs(cfg, device, augment_on_device=on_device)
    epoch = 0
    while True:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            yield inputs(batch), batch["label"].to(device, non_blocking=True)
        epoch += 1


def build_for_clip(config_path: str, opts: list[str], frames: int, crop: int) -> nn.Module:
    """Picklable model factory for timing processes: the config's model, sized for a frames x crop clip."""
    from rs3d.config import load_config
    from rs3d.models.factory import build_model

    sized = [*opts, "DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(crop)]
    return build_model(load_config(config_path, sized))


#: Training FLOPs per clip = TRAIN_FLOPS_PER_MAC x fvcore's count. fvcore counts one multiply-add as one "flop", a
#: forward pass is 2 FLOPs per multiply-add, and backward costs twice the forward: 2 x (1 + 2) = 6.
TRAIN_FLOPS_PER_MAC = 6

#: Dense peak TFLOP/s per GPU (bf16, TF32) from NVIDIA's data sheets, most specific name first. torch reports the
#: H100 SXM as "NVIDIA H100 80GB HBM3"; the PCIe and NVL parts name themselves.
GPU_PEAK_TFLOPS: tuple[tuple[str, float, float], ...] = (
    ("H100 PCIe", 756.0, 378.0),
    ("H100 NVL", 835.0, 417.5),
    ("H100", 989.4, 494.7),
    ("H200", 989.4, 494.7),
    ("H20", 148.0, 74.0),
    ("A100", 312.0, 156.0),
    ("L40S", 362.0, 183.0),
)


def peak_tflops(device_name: str, bf16: bool) -> float | None:
    """The dense peak of a GPU named ``device_name`` for bf16 (else TF32) math; None for GPUs not in the table."""
    for key, bf16_peak, tf32_peak in GPU_PEAK_TFLOPS:
        if key in device_name:
            return bf16_peak if bf16 else tf32_peak
    return None


def mfu(clips_per_s: float, fvcore_gmacs_per_clip: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation of a training step: achieved FLOP/s over the peak (a fraction)."""
    if not peak:
        return None
    return clips_per_s * TRAIN_FLOPS_PER_MAC * fvcore_gmacs_per_clip * 1e9 / (peak * 1e12)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_model(model: nn.Module, setting: SpeedSetting,
               batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, float]:
    """Clips/s, seconds per step and peak memory (MiB) of ``model`` under ``setting``, in this process.

    ``batches`` (clips, labels) feed every step from a real loader (see :func:`real_batches`): the data pipeline
    is then part of the measurement; without it one synthetic clip batch is reused.
    """
    device = torch.device(setting.device)
    memory_format = torch.channels_last_3d if setting.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format).train(setting.train)
    runner: Callable[..., torch.Tensor] = torch.compile(model, fullgraph=True) if setting.compile else model
    clip = torch.rand(setting.batch_size, 3, setting.frames, setting.crop, setting.crop, device=device)
    clip = clip.contiguous(memory_format=memory_format)
    optimizer, ema = None, None
    if setting.train and setting.recipe:
        from rs3d.engine.ema import ModelEma
        from rs3d.engine.optim import build_optimizer

        optimizer, ema = build_optimizer(model, 1e-4, 0.9, 4e-5, nesterov=True), ModelEma(model, 0.9999)
    elif setting.train:
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if setting.amp
                else contextlib.nullcontext())
    labels = torch.zeros(setting.batch_size, dtype=torch.long, device=device)

    def step() -> None:
        nonlocal clip, labels
        if batches is not None:
            clip, labels = next(batches)
            clip = clip.contiguous(memory_format=memory_format)
        if optimizer is None:
            with torch.inference_mode(), autocast:
                runner(clip)
            return
        with autocast:
            logits = runner(clip)
        loss = nn.functional.cross_entropy(logits.float(), labels, label_smoothing=0.1 if setting.recipe else 0.0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model)

    for _ in range(setting.warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(setting.iters):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / setting.iters
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else cpu_peak_memory_mb())
    return {"clips_per_s": setting.batch_size / seconds, "step_s": seconds, "peak_mib": peak}


def _child(build: Callable[[], nn.Module], setting: SpeedSetting, queue: mp.Queue,
           batches: Callable[[], Iterator] | None = None) -> None:
    try:
        torch.manual_seed(0)
        configure_speed()  # a spawned process starts with torch's defaults: set what the trainer sets
        queue.put(time_model(build(), setting, batches() if batches else None))
    except Exception as e:  # reported to the parent, which prints it in the table
        queue.put({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})


def time_in_subprocess(build: Callable[[], nn.Module], setting: SpeedSetting,
                       batches: Callable[[], Iterator] | None = None) -> dict:
    """Run ``time_model(build(), setting, batches())`` in a fresh spawned process; ``build`` and ``batches`` (a
    factory of real batches, e.g. a partial of :func:`real_batches`) must be picklable."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(build, setting, queue, batches))
    proc.start()
    proc.join()
    if proc.exitcode != 0 and queue.empty():
        return {"error": f"benchmark process died with exit code {proc.exitcode}"}
    return queue.get()
