"""Every model runs in channels_last_3d and under bf16 autocast; RS3D compiles with fullgraph=True."""

import pytest
import torch

from rs3d.config import load_config
from rs3d.models import ResNet3D, available_archs, build_model


def small_model(arch: str) -> torch.nn.Module:
    cfg = load_config(None, ["MODEL.ARCH", arch, "MODEL.NUM_CLASSES", "5", "DATA.NUM_FRAMES", "8",
                             "DATA.TRAIN_CROP_SIZE", "64", "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.25"])
    torch.manual_seed(0)
    return build_model(cfg).eval()


@pytest.mark.parametrize("arch", ["resnet3d", "slow_r50", "i3d_r50", "c2d_r50", "r2plus1d_r50", "x3d_xs"])
def test_channels_last_and_bf16_autocast(arch):
    assert arch in available_archs()
    model = small_model(arch)
    clip = torch.rand(2, 3, 8, 64, 64)
    with torch.no_grad():
        reference = model(clip)
        model_cl = model.to(memory_format=torch.channels_last_3d)
        out_cl = model_cl(clip.contiguous(memory_format=torch.channels_last_3d))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = model_cl(clip.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out_cl, reference, atol=1e-4, rtol=1e-4)
    if arch == "resnet3d":  # pytorchvideo heads pool in fp32 under autocast; ours stays in bf16 to the logits
        assert out_bf16.dtype == torch.bfloat16
    assert torch.isfinite(out_bf16).all()
    assert (out_bf16.float() - reference).abs().max() < 0.1 * reference.abs().max() + 0.05


def _check_compiled(padding: str, backend: str) -> None:
    """The smallest RS3D that has every block feature (deep stem, SE, self-gating, stochastic depth, a strided
    stage): compiled with fullgraph=True it matches eager in eval mode and trains (dropout and drop-path in the
    graph)."""
    torch.manual_seed(0)
    model = ResNet3D(blocks=(1, 1), widths=(4, 8), temporal_kernels=(1, 3), temporal_strides=(1, 1),
                     spatial_strides=(1, 2), stem_width=8, num_classes=3, padding=padding)
    clip = torch.rand(2, 3, 4, 16, 16)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(clip), model(clip), atol=1e-4, rtol=1e-4)
    model.train()
    loss = compiled(clip).logsumexp(dim=1).mean()  # train mode: stochastic depth and dropout in the graph
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("padding", ["torch", "tf_same"])
def test_torch_compile_captures_one_graph(padding):
    """Dynamo + AOT autograd (no code generation): any graph break fails fullgraph=True."""
    _check_compiled(padding, "aot_eager")


@pytest.mark.slow
def test_torch_compile_inductor():
    """What TRAIN.COMPILE runs: the default Inductor backend, generated kernels included (a cold compile)."""
    _check_compiled("tf_same", "inductor")
