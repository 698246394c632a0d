"""Where a training step's time can go, measured without a GPU (issue 19, item 4: levers decided from a profile):
the bytes every op reads and writes (meta device, the real batch and clip size), the ops that break a
channels_last_3d layout (small real tensors on the CPU), and what skipping dropped samples' branches would save.

Byte counts are a floor on memory traffic: each op reads its inputs and writes its outputs once (a broadcast input
counts its distinct elements, views move nothing). Launch counts are the non-view ops dispatched, one kernel each
in eager mode, so ``step ms / ops`` is the mean kernel length CUDA graphs would have to beat.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from rs3d.models.layers import DropPath
from rs3d.studies.levers import kernel_group

#: Ops that only make a view or metadata: no kernel, no bytes.
VIEW_OPS = frozenset({
    "view", "_unsafe_view", "expand", "permute", "as_strided", "detach", "t", "transpose", "unsqueeze", "squeeze",
    "alias", "slice", "select", "unbind", "split", "split_with_sizes", "reshape", "squeeze_", "unsqueeze_",
    "empty", "empty_like", "new_empty", "new_empty_strided", "empty_strided", "lift_fresh", "_to_copy_meta",
    "is_same_size", "_has_compatible_shallow_copy_type", "set_", "_reshape_alias", "view_as", "expand_as",
})


def distinct_bytes(t: torch.Tensor) -> int:
    """Bytes of the distinct elements a tensor view covers (a broadcast dimension, stride 0, counts once)."""
    return math.prod(s for s, st in zip(t.shape, t.stride()) if st != 0) * t.element_size()


def op_name(func: torch._ops.OpOverload) -> str:
    """The aten op's name without its overload (``add.Tensor`` -> ``add``)."""
    return func.__name__.split(".")[0]


@dataclass
class Traffic:
    """Bytes read and written and ops dispatched by one forward + backward, by kernel group."""

    read: Counter = field(default_factory=Counter)
    written: Counter = field(default_factory=Counter)
    ops: Counter = field(default_factory=Counter)

    def total_gb(self) -> float:
        return (sum(self.read.values()) + sum(self.written.values())) / 1e9

    def group_gb(self) -> dict[str, float]:
        return {g: (self.read[g] + self.written[g]) / 1e9 for g in sorted(set(self.read) | set(self.written))}


def _tensors(tree) -> list[torch.Tensor]:
    return [a for a in tree_flatten(tree)[0] if isinstance(a, torch.Tensor)]


class _KernelOps(TorchDispatchMode):
    """Runs every op and hands each one that launches a kernel (not a view, see :data:`VIEW_OPS`) to
    :meth:`seen`, whose return value becomes the op's output."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = op_name(func)
        return out if name in VIEW_OPS else self.seen(name, (args, kwargs), out)

    def seen(self, name: str, inputs: tuple, out):
        raise NotImplementedError


class _ByteCounter(_KernelOps):
    def __init__(self, traffic: Traffic) -> None:
        super().__init__()
        self.traffic = traffic

    def seen(self, name: str, inputs: tuple, out):
        group = kernel_group(name)
        self.traffic.ops[group] += 1
        self.traffic.read[group] += sum(distinct_bytes(a) for a in _tensors(inputs))
        self.traffic.written[group] += sum(distinct_bytes(a) for a in _tensors(out))
        return out


def step_traffic(model: nn.Module, clip_shape: tuple[int, ...], dtype: torch.dtype = torch.bfloat16) -> Traffic:
    """Bytes and ops of one training forward + backward of a copy of ``model`` on a ``clip_shape`` batch, on the
    meta device in ``dtype`` (bf16 stands for bf16 autocast: activations and their gradients dominate)."""
    meta = copy.deepcopy(model).to(device="meta", dtype=dtype).train()
    clip = torch.empty(clip_shape, device="meta", dtype=dtype, requires_grad=False)
    traffic = Traffic()
    with _ByteCounter(traffic):
        meta(clip).float().sum().backward()
    return traffic


def layout_of(t: torch.Tensor) -> str:
    """"channels_last_3d", "broadcast", "NCDHW" or "other" for a 5-D tensor."""
    if t.is_contiguous(memory_format=torch.channels_last_3d):
        return "channels_last_3d"
    if 0 in t.stride():
        return "broadcast"
    return "NCDHW" if t.is_contiguous() else "other"


#: Ops whose output layout on the CPU is oneDNN's choice, not the rule a GPU follows (see :func:`layout_breaks`).
CPU_CONVOLUTIONS = frozenset({"convolution", "convolution_backward"})


class _LayoutWatcher(_KernelOps):
    def __init__(self, cuda_like_convs: bool) -> None:
        super().__init__()
        self.found: Counter = Counter()
        self.phase = "forward"
        self.cuda_like_convs = cuda_like_convs

    def seen(self, name: str, inputs: tuple, out):
        if self.cuda_like_convs and name in CPU_CONVOLUTIONS:
            return tree_map(lambda o: o.contiguous(memory_format=torch.channels_last_3d)
                            if isinstance(o, torch.Tensor) and o.dim() == 5 else o, out)
        for o in _tensors(out):
            if o.dim() == 5 and o.shape[2:].numel() > 1 and layout_of(o) in ("NCDHW", "other"):
                self.found[(self.phase, name)] += 1
        return out


def layout_breaks(model: nn.Module, clip_shape: tuple[int, ...], device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> Counter:
    """Ops that write a full-size 5-D tensor that is not channels_last_3d when ``model`` runs a training forward
    and backward on a channels_last_3d clip: (phase, op) -> count, from a copy on small real tensors.

    On a GPU every op is checked, cuDNN's convolutions and BatchNorm included. On the CPU (float32 by default) the
    check is of the rules that are the same on a GPU, those of elementwise ops and reductions (TensorIterator's):
    each break found is a full-size write in the wrong order on a GPU too, and a strided read by the next op. The
    CPU's convolutions are not: oneDNN's output layout depends on the thread count (with one thread a CL input
    gives an NCDHW output), so their outputs are put in channels_last_3d, as cuDNN returns them."""
    cl = torch.channels_last_3d
    net = copy.deepcopy(model).to(device=device, dtype=dtype, memory_format=cl).train()
    clip = torch.randn(clip_shape, generator=torch.Generator().manual_seed(0))
    clip = clip.to(device=device, dtype=dtype).contiguous(memory_format=cl)
    watcher = _LayoutWatcher(cuda_like_convs=torch.device(device).type == "cpu")
    with watcher:
        logits = net(clip)
        watcher.phase = "backward"
        logits.float().sum().backward()
    return watcher.found


def drop_path_skip_share(model: nn.Module, clip_shape: tuple[int, ...]) -> float:
    """The share of a training step's convolution multiply-adds that skipping the residual branch of each dropped
    sample would save in expectation: sum over blocks of drop rate x branch MACs, over all MACs."""
    meta = copy.deepcopy(model).to("meta").train()
    macs: Counter = Counter()
    owner: dict[nn.Module, nn.Module] = {}
    for block in meta.modules():
        if isinstance(getattr(block, "drop_path", None), DropPath) and hasattr(block, "shortcut"):
            shortcut = set(block.shortcut.modules())
            for m in block.modules():
                if isinstance(m, nn.Conv3d) and m not in shortcut:
                    owner[m] = block

    def record(m: nn.Conv3d, args: tuple, out: torch.Tensor) -> None:
        macs[owner.get(m)] += out.numel() * m.weight[0].numel()

    for m in meta.modules():
        if isinstance(m, nn.Conv3d):
            m.register_forward_hook(record)
    with torch.no_grad():
        meta(torch.empty(clip_shape, device="meta"))
    total = sum(macs.values())
    saved = sum(n * block.drop_path.rate for block, n in macs.items() if block is not None)
    return saved / total if total else 0.0
