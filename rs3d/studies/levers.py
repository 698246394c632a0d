"""The training step's speed levers side by side (issue 19; ``tools/benchmark_levers.py``): each variant of the
recipe step from the same weights, timed round-robin, profiled by kernel group, and each conv shape timed as
``Conv3d`` and as its 2D lowering.

A variant is the RS recipe step (bf16 autocast on a GPU, channels_last_3d, label-smoothed loss, Nesterov SGD with
decay groups, EMA update) with one choice per lever: ``MODEL.RESNET3D.CONV_IMPL``, ``MODEL.RESNET3D.FUSED_TAIL``
and ``TRAIN.COMPILE_SCOPE``.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd import DeviceType

from rs3d.engine.compile import compile_training_net
from rs3d.engine.ema import ModelEma
from rs3d.engine.optim import build_optimizer
from rs3d.models.conv import create_conv3d


@dataclass(frozen=True)
class Lever:
    """One variant of the training step."""

    name: str
    conv_impl: str = "conv3d"
    fused_tail: bool = False
    compile: str = ""  # "", "regional" or "whole"

    def overrides(self) -> list[str]:
        """Config overrides that build this variant's model."""
        return ["MODEL.RESNET3D.CONV_IMPL", self.conv_impl, "MODEL.RESNET3D.FUSED_TAIL", str(self.fused_tail)]


LEVERS: tuple[Lever, ...] = (
    Lever("today: Conv3d, unfused tail"),
    Lever("fused tail", fused_tail=True),
    Lever("lowered convs", conv_impl="lowered"),
    Lever("lowered + fused tail", conv_impl="lowered", fused_tail=True),
    Lever("lowered + fused, regional compile", conv_impl="lowered", fused_tail=True, compile="regional"),
    Lever("lowered + fused, whole compile", conv_impl="lowered", fused_tail=True, compile="whole"),
)

#: Kernel-name fragments of each group, checked in this order (lower case). cuDNN, cuBLAS/CUTLASS and Triton name
#: their kernels differently; on the CPU the names are aten ops.
KERNEL_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("copies", ("copy", "memcpy", "memset", "clone", "contiguous", "nchwtonhwc", "nhwctonchw", "transpose_",
                "cat", "fill")),
    ("BatchNorm", ("batch_norm", "batchnorm", "bn_fw", "bn_bw", "welford", "native_batch_norm")),
    ("conv/GEMM", ("conv", "gemm", "cutlass", "cudnn", "xmma", "sm90", "sm80", "wgrad", "dgrad", "fprop", "mm",
                   "matmul", "linear", "implicit", "mkldnn", "onednn")),
    ("reduction", ("reduce", "mean", "sum", "norm", "triton_red", "triton_per", "max_pool", "avg_pool")),
    ("elementwise", ("elementwise", "vectorized", "triton_poi", "relu", "sigmoid", "mul", "add", "div", "threshold",
                     "bernoulli", "where", "foreach", "sgd", "lerp", "addcmul")),
)
#: Kernels that mean a convolution fell back to a slow path (column buffers instead of cuDNN / oneDNN).
SLOW_FALLBACKS = ("vol2col", "col2vol", "slow_conv", "im2col", "col2im")


def kernel_group(name: str) -> str:
    """The group of a kernel or op name (see :data:`KERNEL_GROUPS`); "other" if none matches."""
    low = name.lower()
    for group, fragments in KERNEL_GROUPS:
        if any(f in low for f in fragments):
            return group
    return "other"


def slow_fallbacks(names: list[str]) -> list[str]:
    """The names among ``names`` that are slow convolution fallbacks."""
    return sorted({n for n in names if any(f in n.lower() for f in SLOW_FALLBACKS)})


class RecipeStep:
    """The trainer's step on a synthetic batch: autocast, label-smoothed loss, backward, Nesterov SGD, EMA."""

    def __init__(self, model: nn.Module, device: torch.device, amp: bool, channels_last: bool,
                 compile_scope: str = "", backend: str = "inductor") -> None:
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.model = model.to(device=device, memory_format=self.memory_format).train()
        self.net = compile_training_net(self.model, self.model, backend, compile_scope) if compile_scope else self.model
        self.optimizer = build_optimizer(self.model, 1e-4, 0.9, 4e-5, nesterov=True)
        self.ema = ModelEma(self.model, 0.9999)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
        self.autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext())

    def __call__(self, clip: torch.Tensor, labels: torch.Tensor) -> None:
        clip = clip.contiguous(memory_format=self.memory_format)
        with self.autocast:
            logits = self.net(clip)
        self.criterion(logits.float(), labels).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model)


class StepTimer:
    """Times one call on ``device``: CUDA events on a GPU (no host sync inside the timed region), wall clock on the
    CPU. :meth:`collect` syncs once and returns milliseconds."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.pending: list[tuple[object, object]] = []

    def time(self, fn: Callable[[], None]) -> None:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            self.pending.append((start, end))
        else:
            t0 = time.perf_counter()
            fn()
            self.pending.append((t0, time.perf_counter()))

    def collect(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            out = [s.elapsed_time(e) for s, e in self.pending]
        else:
            out = [(e - s) * 1e3 for s, e in self.pending]
        self.pending = []
        return out


def round_robin(steps: dict[str, Callable[[], None]], warmup: int, iters: int,
                device: torch.device) -> dict[str, dict[str, float]]:
    """``warmup`` then ``iters`` timed calls of every step, taking turns call by call, so every variant sees the
    same machine state; per step the median ms and the peak memory above what was allocated before it (GPU)."""
    timers = {name: StepTimer(device) for name in steps}
    peaks: dict[str, float] = Counter()
    for i in range(warmup + iters):
        for name, step in steps.items():
            if i < warmup:
                step()
                continue
            if device.type == "cuda":
                torch.cuda.synchronize()
                before = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            timers[name].time(step)
            if device.type == "cuda":
                peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated() - before)
    out = {}
    for name, timer in timers.items():
        ms = sorted(timer.collect())
        out[name] = {"ms": ms[len(ms) // 2], "step_peak_bytes": float(peaks[name])}
    return out


@dataclass
class StepProfile:
    """One profiled step: kernel time (ms) by :func:`kernel_group`, the kernels launched, and every name seen."""

    groups: dict[str, float]
    kernels: int
    names: list[str]

    def busy_share(self, step_ms: float) -> float:
        """Kernel time over the step's time: well below 1 on a GPU means it idles between kernels (launch-bound,
        the case CUDA graphs address); near 1 means the kernels themselves are the time."""
        return sum(self.groups.values()) / step_ms if step_ms else 0.0


def profile_groups(step: Callable[[], None], device: torch.device) -> StepProfile:
    """Profile one call of ``step``: on a GPU the device time of its kernels, on the CPU the self time of aten ops."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    groups: dict[str, float] = Counter()
    names, kernels = [], 0
    for event in prof.key_averages():
        names.append(event.key)
        if device.type == "cuda":
            if event.device_type != DeviceType.CUDA:
                continue
            us = event.self_device_time_total
        elif event.key.startswith("aten::"):
            us = event.self_cpu_time_total
        else:
            continue
        kernels += event.count
        groups[kernel_group(event.key)] += us / 1e3
    return StepProfile(dict(groups), kernels, names)


@dataclass(frozen=True)
class ConvShape:
    """One distinct convolution of a network at its input size."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    input_shape: tuple[int, ...]
    count: int = 1

    def macs(self) -> int:
        """Multiply-adds of the forward pass."""
        n, _, t, h, w = self.input_shape
        pad = [k // 2 for k in self.kernel]
        out = [(size + 2 * p - k) // s + 1 for size, p, k, s in zip((t, h, w), pad, self.kernel, self.stride)]
        return n * self.out_channels * out[0] * out[1] * out[2] * self.in_channels * \
            self.kernel[0] * self.kernel[1] * self.kernel[2]


def conv_shapes(model: nn.Module, clip_shape: tuple[int, ...]) -> list[ConvShape]:
    """Every distinct ``nn.Conv3d`` (channels, kernel, stride, input size) that ``model`` runs on a ``clip_shape``
    batch, with how often it occurs, from a forward of a copy on the meta device (no memory, no compute). The SE
    and gate FCs run as linear layers on pooled features and are not convolutions here."""
    meta = copy.deepcopy(model).to("meta").eval()
    seen: Counter = Counter()

    def record(m: nn.Conv3d, args: tuple) -> None:
        seen[(m.in_channels, m.out_channels, tuple(m.kernel_size), tuple(m.stride), tuple(args[0].shape))] += 1

    for module in meta.modules():
        if isinstance(module, nn.Conv3d):
            module.register_forward_pre_hook(record)
    with torch.no_grad():
        meta(torch.empty(clip_shape, device="meta"))
    return [ConvShape(*key, count=count) for key, count in seen.items()]


def time_conv_shape(shape: ConvShape, impl: str, device: torch.device, dtype: torch.dtype,
                    iters: int = 10) -> dict[str, float]:
    """TFLOP/s of one conv shape as ``impl`` ("conv3d" or "lowered"): forward, input gradient (dgrad) and weight
    gradient (wgrad), each timed alone on a channels_last_3d input."""
    conv = create_conv3d(shape.in_channels, shape.out_channels, shape.kernel, shape.stride, impl=impl)
    conv = conv.to(device=device, dtype=dtype, memory_format=torch.channels_last_3d)
    x = torch.randn(shape.input_shape, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last_3d)
    x.requires_grad_()
    out = conv(x)
    grad = torch.randn_like(out)
    passes = {
        "fwd": lambda: conv(x),
        "dgrad": lambda: torch.autograd.grad(out, x, grad, retain_graph=True),
        "wgrad": lambda: torch.autograd.grad(out, conv.weight, grad, retain_graph=True),
    }
    flops = 2.0 * shape.macs()  # the forward, and each gradient, is one multiply-add per MAC
    result = {}
    for name, fn in passes.items():
        timer = StepTimer(device)
        for _ in range(2):
            fn()
        for _ in range(iters):
            timer.time(fn)
        ms = sorted(timer.collect())[iters // 2]
        result[f"{name}_ms"] = ms
        result[name] = flops / (ms * 1e-3) / 1e12
    return result
