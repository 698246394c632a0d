"""The training step's speed levers (issue 19) compute the same function: lowered convs (rs3d/models/conv.py), the
fused block tail (rs3d/models/layers.tail_scale) and regional compilation (rs3d/engine/compile.py).

The independent reference is ``nn.Conv3d`` and the unfused block of the TF layout, in float64."""

from collections import Counter

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from rs3d.engine.compile import compile_training_net
from rs3d.models.conv import LoweredConv3d, create_conv3d, lowering_route
from rs3d.models.resnet3d import Bottleneck3d, ResNet3D

CL = torch.channels_last_3d
COPIES = {"clone", "copy_", "contiguous", "_to_copy", "copy"}


class OpCounter(TorchDispatchMode):
    """Counts every aten op dispatched (forward and backward), by name, plus the bytes each one writes."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()
        self.written = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if name not in ("view", "_unsafe_view", "permute", "transpose", "expand", "squeeze", "unsqueeze", "t",
                        "detach", "alias", "as_strided", "select", "slice", "unflatten", "_reshape_alias"):
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self.written += t.numel() * t.element_size()
        return out


# (kernel, stride, route) of every conv shape in RS3D, plus the ones no view can take.
CASES = [
    ((1, 1, 1), (1, 1, 1), "pointwise"),
    ((1, 1, 1), (1, 2, 2), "spatial"),   # a downsampling shortcut
    ((1, 3, 3), (1, 1, 1), "spatial"),
    ((1, 3, 3), (1, 2, 2), "spatial"),
    ((3, 1, 1), (1, 1, 1), "temporal"),
    ((3, 1, 1), (2, 1, 1), "temporal"),
    ((5, 1, 1), (1, 1, 1), "temporal"),
    ((1, 3, 3), (2, 1, 1), None),        # temporal stride on a spatial conv
    ((3, 1, 1), (1, 2, 2), None),        # spatial stride on a temporal conv
    ((5, 3, 3), (2, 2, 2), None),        # the stem
]


def test_routes_are_the_ones_that_have_a_view():
    for kernel, stride, route in CASES:
        padding = tuple(k // 2 for k in kernel)
        assert lowering_route(kernel, stride, padding) == route, (kernel, stride)
    assert lowering_route((1, 1, 1), (1, 1, 1), (0, 1, 1)) == "spatial"  # conv2d pads H and W
    assert lowering_route((1, 1, 1), (1, 1, 1), (1, 1, 1)) is None  # padding in T and H/W at once needs Conv3d


@pytest.mark.parametrize("padding", ["torch", "tf_same"])
@pytest.mark.parametrize("kernel,stride,route", CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_lowered_conv_equals_conv3d_in_float64(kernel, stride, route, padding, bias):
    """Output, input gradient and weight (and bias) gradient against nn.Conv3d on the same (padded) input."""
    torch.manual_seed(0)
    conv = create_conv3d(6, 5, kernel, stride, bias=bias, padding=padding, impl="lowered").double()
    assert isinstance(conv, LoweredConv3d) and conv.route == route
    reference = nn.Conv3d(6, 5, kernel, stride, padding=0, bias=bias).double()
    reference.load_state_dict(conv.state_dict())
    conv, reference = conv.to(memory_format=CL), reference.to(memory_format=CL)
    x = torch.randn(2, 6, 7, 9, 11, dtype=torch.float64).contiguous(memory_format=CL).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    padded = conv.pad(x_ref) if padding == "tf_same" else nn.functional.pad(
        x_ref, [k // 2 for k in reversed(kernel) for _ in (0, 1)])
    assert conv.lowers(conv.pad(x)) == (route is not None)
    out, expected = conv(x), reference(padded)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-12)
    for name, p in conv.named_parameters():
        torch.testing.assert_close(p.grad, dict(reference.named_parameters())[name].grad, rtol=0, atol=1e-11)


def test_lowered_conv_falls_back_on_a_contiguous_input():
    conv = create_conv3d(4, 4, (1, 3, 3), impl="lowered")
    x = torch.randn(1, 4, 3, 8, 8)
    assert conv.route == "spatial" and not conv.lowers(x) and conv.lowers(x.contiguous(memory_format=CL))
    auto = create_conv3d(4, 4, (1, 3, 3), impl="auto")  # CUDA only
    assert not auto.lowers(x.contiguous(memory_format=CL))
    with pytest.raises(ValueError, match="conv_impl"):
        create_conv3d(4, 4, 1, impl="conv2d")


@pytest.mark.parametrize("kernel,stride,route", [c for c in CASES if c[2]])
def test_lowered_convs_dispatch_no_copy(kernel, stride, route):
    """The views are free: no clone / copy_ / contiguous in forward or backward (float32, channels_last_3d)."""
    conv = create_conv3d(8, 16, kernel, stride, bias=True, impl="lowered").to(memory_format=CL)
    x = torch.randn(2, 8, 6, 10, 10).contiguous(memory_format=CL).requires_grad_()
    with OpCounter() as counter:
        out = conv(x)
        out.backward(torch.ones_like(out))
    assert not COPIES & set(counter.ops), counter.ops
    assert counter.ops["convolution"] + counter.ops["mm"] + counter.ops["addmm"] > 0
    assert out.is_contiguous(memory_format=CL)  # the next layer gets the layout it needs


def tiny_rs3d(**kwargs) -> ResNet3D:
    """RS3D with every block kind: projection / strided / identity shortcuts, SE, self-gating, drop path, and
    temporal kernels and a temporal stride where the lowering has to fall back."""
    options = dict(blocks=(2, 2, 1, 2), widths=(4, 4, 8, 8), stem_width=8, num_classes=5,
                   temporal_kernels=(1, 3, 3, 3), temporal_strides=(1, 1, 2, 1), stem_temporal_kernel=1,
                   stem_temporal_stride=1, drop_path_rate=0.9, self_gating=True, se_ratio=0.25)
    options.update(kwargs)
    return ResNet3D(**options)


def force_channels_last(model: nn.Module) -> Counter:
    """Make every lowered conv see a channels_last_3d input (CPU float64 Conv3d returns NCDHW, which would
    otherwise switch the lowering off after the first Conv3d), and count the routes taken."""
    taken: Counter = Counter()

    def pre(module, args):
        x = args[0].contiguous(memory_format=CL)
        taken[module.route if module.lowers(module.pad(x)) else "conv3d"] += 1
        return (x,)

    for m in model.modules():
        if isinstance(m, LoweredConv3d):
            m.register_forward_pre_hook(pre)
    return taken


def run_step(model: nn.Module, clip: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    x = clip.clone().requires_grad_()
    torch.manual_seed(seed)  # the same drop-path masks for every variant
    logits = model(x)
    logits.backward(torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits))
    return logits, x.grad, {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("padding", ["torch", "tf_same"])
@pytest.mark.parametrize("conv_impl,fused_tail", [("conv3d", True), ("lowered", False), ("lowered", True)])
def test_every_eager_variant_equals_the_unfused_conv3d_step_in_float64(padding, conv_impl, fused_tail):
    """Logits, input gradient, every parameter gradient and the BN running statistics, with seeded drop path."""
    torch.manual_seed(0)
    reference = tiny_rs3d(padding=padding, conv_impl="conv3d", fused_tail=False).double().train()
    variant = tiny_rs3d(padding=padding, conv_impl=conv_impl, fused_tail=fused_tail).double().train()
    variant.load_state_dict(reference.state_dict())
    taken = force_channels_last(variant) if conv_impl == "lowered" else Counter()
    clip = torch.randn(4, 3, 6, 17, 19, dtype=torch.float64)  # odd sizes: tf_same pads asymmetrically
    expected = run_step(reference, clip, seed=3)
    got = run_step(variant.to(memory_format=CL), clip.contiguous(memory_format=CL), seed=3)
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=1e-12)
    assert got[2].keys() == expected[2].keys()
    for name, grad in expected[2].items():
        torch.testing.assert_close(got[2][name], grad, rtol=1e-10, atol=1e-12, msg=name)
    for name, buffer in reference.named_buffers():
        torch.testing.assert_close(dict(variant.named_buffers())[name], buffer, rtol=0, atol=1e-12, msg=name)
    if conv_impl == "lowered":  # every route was exercised, and only the stem-free fallbacks ran Conv3d
        assert taken["pointwise"] and taken["spatial"] and taken["temporal"] and taken["conv3d"]


def test_drop_path_really_drops_in_the_compared_step():
    """The seeded masks above drop some samples' branches (rate 0.9), so the equality covers drop path."""
    model = tiny_rs3d(conv_impl="conv3d").double().train()
    block = model.stages[1][1]
    outputs = []
    block.register_forward_hook(lambda m, a, out: outputs.append(a[0].detach()))
    torch.manual_seed(3)
    model(torch.randn(4, 3, 6, 17, 19, dtype=torch.float64))
    x = outputs[0]
    torch.manual_seed(3)
    factors = block.drop_path.factor(x).flatten()
    assert (factors == 0).any() and (factors > 1).any()


def tail_bytes(fused: bool) -> int:
    """Bytes written by the ops of one block tail (bn3 output onward) in forward and backward, on the meta device."""
    with torch.device("meta"):
        block = Bottleneck3d(256, 64, se_ratio=0.25, self_gating=True, drop_path_rate=0.1, fused_tail=fused)
        x = torch.empty(16, 256, 4, 14, 14, requires_grad=True)  # bn3's output
        shortcut = torch.empty(16, 256, 4, 14, 14, requires_grad=True)
    block.train()
    with OpCounter() as counter:
        if fused:
            from rs3d.models.layers import tail_scale
            scale = tail_scale(x, block.gate, block.se, block.drop_path)
            out = block.act(torch.addcmul(shortcut, x, scale[:, :, None, None, None]))
        else:
            out = block.act(block.drop_path(block.se(block.gate(x))) + shortcut)
        out.backward(torch.empty_like(out))
    return counter.written


def test_fused_tail_writes_fewer_bytes():
    """Unfused, gate, SE and drop path each write a full (N, C, T, H, W) tensor forward and more backward; fused,
    the scale is applied once with the residual add. At least 5 full tensors fewer per block and step."""
    full = 16 * 256 * 4 * 14 * 14 * 4
    unfused, fused = tail_bytes(False), tail_bytes(True)
    assert unfused - fused >= 5 * full, (unfused / full, fused / full)


def test_fused_tail_block_equals_unfused_with_identity_parts():
    """A block with no gate, SE or drop path (the R3D baseline's): the fused path is a plain residual add."""
    torch.manual_seed(0)
    a = Bottleneck3d(8, 2, se_ratio=0.0, self_gating=False, fused_tail=True).double()
    b = Bottleneck3d(8, 2, se_ratio=0.0, self_gating=False, fused_tail=False).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 8, 3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def rs50_structure(**kwargs) -> ResNet3D:
    """RS3D-50's blocks, kernels, strides, SE, gates and drop-path rates at a width a CPU compiles in seconds."""
    return ResNet3D(blocks=(3, 4, 6, 3), widths=(4, 4, 8, 8), stem_width=8, num_classes=5, **kwargs)


@pytest.mark.slow
def test_regional_compile_makes_one_graph_per_block_signature_and_never_runs_eagerly():
    """RS3D-50's 16 blocks + stem are 13 signatures (stem; first, middle and last block of each stage: the first
    changes channels or stride, the last has self-gating). Every region runs compiled on every call, with lowered
    convs on channels_last_3d (no graph break), and computes what the plain eager model does."""
    torch._dynamo.reset()
    graphs, calls = [], Counter()

    def counting(gm, example_inputs):
        index = len(graphs)
        graphs.append(gm)

        def run(*args):
            calls[index] += 1
            return gm.forward(*args)
        return run

    torch.manual_seed(0)
    model = rs50_structure(conv_impl="lowered").train().to(memory_format=CL)  # the Kinetics configs' GPU path
    reference = rs50_structure(conv_impl="conv3d", fused_tail=False).train()
    reference.load_state_dict(model.state_dict())
    assert compile_training_net(model, model, backend=counting) is model
    assert list(model.state_dict()) == list(reference.state_dict())  # checkpoints keep their keys
    clip = torch.randn(2, 3, 4, 32, 32).contiguous(memory_format=CL)
    for _ in range(2):
        torch.manual_seed(1)
        out = model(clip)
        torch.manual_seed(1)
        torch.testing.assert_close(out, reference(clip), rtol=1e-5, atol=1e-5)
    assert len(graphs) == 1 + 4 * 3
    assert sum(calls.values()) == 2 * (1 + 16)  # no region fell back to eager
    model.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference(clip), rtol=1e-5, atol=1e-5)
    assert len(graphs) == 2 * (1 + 4 * 3) and sum(calls.values()) == 3 * (1 + 16)
    torch._dynamo.reset()
