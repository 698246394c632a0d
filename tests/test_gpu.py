"""The GPU tier (`pytest -m gpu`, skipped without CUDA): one training step of RS3D-50 and Slow R50 under every speed
setting against an fp32 eager step, DDP with NCCL in one process, and the predictor in bf16.

Tolerances, and why: fp32 rows run with TF32 matmuls/convolutions (10-bit mantissa, as the trainer runs them),
bf16 rows with an 8-bit mantissa; over ~50 layers the logits then move by about 1% of their spread, and the
gradient of a random-init network keeps its direction (cosine similarity) far better than its last bits.
"""
import contextlib
import os
import socket

import pytest
import torch

from rs3d.config import load_config
from rs3d.engine.optim import build_optimizer
from rs3d.models import build_model
from rs3d.utils.runtime import configure_speed

pytestmark = pytest.mark.gpu
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"rs3d_50": ("configs/kinetics400/rs3d_50.yaml", 16, 160), "slow_r50": ("configs/kinetics400/slow_r50.yaml",
                                                                                   8, 160)}
SETTINGS = {  # name: (bf16 autocast, channels_last_3d, compile scope, fused SGD, conv impl, fused tail), tolerance
    "fp32_tf32": ((False, False, "", False, "conv3d", False), 0.01),
    "channels_last": ((False, True, "", False, "conv3d", False), 0.01),
    "bf16": ((True, False, "", False, "conv3d", False), 0.05),
    "bf16_channels_last_fused": ((True, True, "", True, "conv3d", False), 0.05),
    "fp32_lowered_fused_tail": ((False, True, "", False, "lowered", True), 0.01),
    "bf16_lowered_fused_tail": ((True, True, "", True, "lowered", True), 0.05),  # the Kinetics configs' default
    "bf16_lowered_fused_tail_regional_compile": ((True, True, "regional", True, "lowered", True), 0.05),
    "bf16_channels_last_whole_compile": ((True, True, "whole", True, "conv3d", False), 0.05),
}
#: The reference: every lever off (nn.Conv3d, unfused block tail), fp32 without TF32, eager.
REFERENCE = ["MODEL.RESNET3D.CONV_IMPL", "conv3d", "MODEL.RESNET3D.FUSED_TAIL", "False"]


def build(name: str, overrides: list[str] = REFERENCE) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    path, frames, crop = MODELS[name]
    cfg = load_config(os.path.join(ROOT, path), ["DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(crop),
                                                 "MODEL.NUM_CLASSES", "10", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg).cuda().eval()  # eval: no dropout / drop-path draws, BN uses fixed statistics
    generator = torch.Generator(device="cuda").manual_seed(1)
    clip = torch.rand(2, 3, frames, crop, crop, device="cuda", generator=generator)
    return model, clip, torch.tensor([3, 7], device="cuda")


def step(model, clip, labels, bf16, channels_last, compile_scope, fused):
    """One trainer-style step; returns (logits, flattened gradient, parameters after the SGD update)."""
    from rs3d.engine.compile import compile_training_net

    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
        clip = clip.contiguous(memory_format=torch.channels_last_3d)
    optimizer = build_optimizer(model, 0.1, 0.9, 4e-5, fused=fused)
    runner = compile_training_net(model, model, scope=compile_scope) if compile_scope else model
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        logits = runner(clip)
    torch.nn.functional.cross_entropy(logits.float(), labels, label_smoothing=0.1).backward()
    grad = torch.cat([p.grad.flatten().float() for p in model.parameters()])
    optimizer.step()
    return logits.float().detach(), grad, torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("name", list(MODELS))
def test_training_step_matches_fp32_eager(name, setting):
    configure_speed()
    (bf16, channels_last, compile_scope, fused, conv_impl, fused_tail), tolerance = SETTINGS[setting]
    if name == "rs3d_50" and compile_scope == "whole":
        pytest.skip("whole-model compile of RS3D-50 took over 150 s on an H200; tools/benchmark_levers.py times it")
    model, clip, labels = build(name)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    ref_logits, ref_grad, ref_params = step(model, clip, labels, False, False, "", False)
    configure_speed()
    model, _, _ = build(name, ["MODEL.RESNET3D.CONV_IMPL", conv_impl, "MODEL.RESNET3D.FUSED_TAIL", str(fused_tail)])
    model.load_state_dict(reference)
    logits, grad, params = step(model, clip, labels, bf16, channels_last, compile_scope, fused)
    spread = ref_logits.abs().max()
    assert (logits - ref_logits).abs().max() <= tolerance * spread + 1e-4
    assert torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0) > 0.99
    assert (params - ref_params).abs().max() < 0.05  # one step at LR 0.1 moved every weight the same way


def test_lowered_convs_take_the_2d_route_on_cuda():
    """CONV_IMPL auto lowers on CUDA: no 5-D convolution runs in a channels_last step but the stem's first."""
    from rs3d.models.conv import LoweredConv3d

    model, clip, _ = build("rs3d_50", ["MODEL.RESNET3D.CONV_IMPL", "auto"])
    model = model.to(memory_format=torch.channels_last_3d)
    clip = clip.contiguous(memory_format=torch.channels_last_3d)
    lowered = []
    for m in model.modules():
        if isinstance(m, LoweredConv3d):
            m.register_forward_pre_hook(lambda mod, args: lowered.append(mod.lowers(mod.pad(args[0]))))
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        model(clip)
    assert len(lowered) == 3 + 16 * 3 + 4 and lowered.count(False) == 1  # only the (5, 3, 3) stem conv


@pytest.mark.parametrize("conv_impl", ["conv3d", "lowered"])
def test_the_default_step_keeps_channels_last_on_cuda(conv_impl):
    """bf16, channels_last_3d, fused tail: no op of forward or backward writes a full-size tensor in another
    layout (cuDNN's convolutions and BatchNorm included; on the CPU only the elementwise rules are checked)."""
    from rs3d.studies.traffic import layout_breaks

    model, _, _ = build("rs3d_50", ["MODEL.RESNET3D.CONV_IMPL", conv_impl, "MODEL.RESNET3D.FUSED_TAIL", "True"])
    assert dict(layout_breaks(model, (2, 3, 8, 64, 64), device="cuda", dtype=torch.bfloat16)) == {}


@contextlib.contextmanager
def nccl_group():
    """A one-process NCCL group on a free local port, destroyed afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("nccl", rank=0, world_size=1)
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_with_nccl_in_one_process():
    from torch.nn.parallel import DistributedDataParallel

    with nccl_group():
        model, clip, labels = build("rs3d_50")
        reference = {k: v.clone() for k, v in model.state_dict().items()}
        _, ref_grad, _ = step(model, clip, labels, True, True, "", True)
        model.load_state_dict(reference)
        model.zero_grad(set_to_none=True)
        ddp = DistributedDataParallel(model, device_ids=[0])
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = ddp(clip.contiguous(memory_format=torch.channels_last_3d))
        torch.nn.functional.cross_entropy(logits.float(), labels, label_smoothing=0.1).backward()
        grad = torch.cat([p.grad.flatten().float() for p in model.parameters()])
        assert torch.nn.functional.cosine_similarity(grad, ref_grad, dim=0) > 0.999


def test_predictor_in_bf16_agrees_with_fp32(tmp_path):
    from rs3d.checkpoint import save_atomic
    from rs3d.inference import Predictor

    cfg = load_config(os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml"), ["MODEL.NUM_CLASSES", "8"])
    torch.manual_seed(0)
    save_atomic({"model": build_model(cfg).state_dict(), "config": cfg.dump()}, str(tmp_path / "m.pyth"))
    clips = torch.randint(0, 256, (4, 3, cfg.DATA.NUM_FRAMES, 72, 96), dtype=torch.uint8)
    bf16 = Predictor(None, str(tmp_path / "m.pyth"), "cuda")  # TRAIN.MIXED_PRECISION auto: bf16 on a GPU
    fp32 = Predictor(None, str(tmp_path / "m.pyth"), "cuda", overrides=["TRAIN.MIXED_PRECISION", "off"])
    assert bf16.amp_dtype == torch.bfloat16 and fp32.amp_dtype is None
    torch.testing.assert_close(bf16.predict_clip(clips), fp32.predict_clip(clips), atol=0.02, rtol=0.05)


@pytest.mark.parametrize("policy,magnitude", [("torchvision", 9), ("tf", 10), ("tf_reflect", 15)])
def test_batch_augment_on_cuda_matches_the_cpu(policy, magnitude):
    """DATA.AUGMENT_ON_DEVICE on a GPU against the same draws on the CPU (bit-identical to the worker path there):
    integer and copy ops exactly, float colour ops within one level (rs3d.data.device_inputs's docstring)."""
    from rs3d.data.device_inputs import BatchAugment
    from rs3d.data.transforms import TrainClipTransform

    transform = TrainClipTransform(112, flip_prob=0.5, randaug_layers=2, randaug_magnitude=magnitude,
                                   randaug_policy=policy)
    torch.manual_seed(0)
    crops = torch.randint(0, 256, (32, 8, 112, 112, 3), dtype=torch.uint8)
    draws = transform.encode([transform.draw(8) for _ in range(32)])
    augment = BatchAugment(policy, magnitude)
    cpu = augment(crops, draws, "cpu", 112)
    gpu = augment(crops.cuda(), draws, "cuda", 112).cpu()
    difference = (gpu.int() - cpu.int()).abs()
    assert difference.max() <= 1 and (difference > 0).float().mean() < 1e-3


def test_preemption_flag_reduced_on_nccl_without_a_step_sync():
    """The stop flag's all-reduce on NCCL, read one step later from pinned memory."""
    from types import SimpleNamespace

    from rs3d.engine.hooks.preemption import PreemptionHook

    with nccl_group():
        hook = PreemptionHook()
        hook.trainer = SimpleNamespace(device=torch.device("cuda"), dist=SimpleNamespace(distributed=True))
        assert hook._agreed_stop() is False  # nothing pending yet; launches the first reduction
        hook.received = "SIGTERM"
        assert hook._agreed_stop() is False  # reads the reduction launched before the signal
        assert hook._agreed_stop() is True


def test_batch_augment_resizes_crops_of_any_size_on_cuda():
    """The loader's unresized crops, resized on the GPU: torch's CPU kernel resizes uint8 in fixed point, the CUDA
    path in float, so pixels may differ by a few levels (max 3, mean < 0.5); the augmentation after it is exact."""
    from rs3d.data.device_inputs import BatchAugment
    from rs3d.data.transforms import TrainClipTransform

    transform = TrainClipTransform(112, flip_prob=0.5, randaug_layers=0)
    torch.manual_seed(0)
    crops = [torch.randint(0, 256, (8, int(h), int(w), 3), dtype=torch.uint8)
             for h, w in torch.randint(60, 250, (16, 2))]
    draws = transform.encode([transform.draw(8) for _ in crops])
    augment = BatchAugment("tf", 10)
    cpu = augment(crops, draws, "cpu", 112)
    gpu = augment(crops, draws, "cuda", 112).cpu()
    difference = (gpu.int() - cpu.int()).abs()
    assert difference.max() <= 3 and difference.float().mean() < 0.5
