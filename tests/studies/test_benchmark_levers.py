"""tools/benchmark_levers.py and its study module (rs3d/studies/levers.py): kernel grouping, the conv shapes of a
network against fvcore's own count, and the tool end to end on the CPU."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT

from rs3d.config import load_config
from rs3d.models.factory import build_model
from rs3d.studies.levers import LEVERS, StepProfile, conv_shapes, kernel_group, profile_groups, slow_fallbacks
from rs3d.utils.complexity import count_gflops

ROOT = Path(REPO_ROOT)


@pytest.mark.parametrize("name,group", [
    ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc", "conv/GEMM"),
    ("cudnn::bn_fw_tr_1C11_kernel_NCHW", "BatchNorm"),
    ("void cudnn::ops::nchwToNhwcKernel<float>", "copies"),
    ("triton_poi_fused_add_mul_relu_0", "elementwise"),
    ("triton_red_fused_mean_1", "reduction"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor>", "elementwise"),
    ("Memcpy DtoD (Device -> Device)", "copies"),
    ("aten::mkldnn_convolution", "conv/GEMM"),
    ("aten::native_batch_norm", "BatchNorm"),
    ("aten::addmm", "conv/GEMM"),
    ("aten::mean", "reduction"),
    ("aten::threshold_backward", "elementwise"),
    ("aten::copy_", "copies"),
])
def test_kernel_groups(name, group):
    assert kernel_group(name) == group


def test_slow_fallbacks_are_named():
    names = ["aten::slow_conv3d_forward", "void at::native::vol2col_kernel<float>", "aten::mkldnn_convolution",
             "sm90_xmma_fprop_implicit_gemm"]
    assert slow_fallbacks(names) == ["aten::slow_conv3d_forward", "void at::native::vol2col_kernel<float>"]


def test_conv_shapes_of_rs3d_50_add_up_to_fvcores_conv_count():
    """The distinct conv shapes, times how often each occurs, are every conv of RS3D-50: 3 stem convs, 3 per block
    (16 blocks) and 4 projection shortcuts; their multiply-adds sum to fvcore's conv-only count."""
    cfg = load_config("configs/kinetics400/rs3d_50.yaml", ["MODEL.RESNET3D.CONV_IMPL", "conv3d"])
    with torch.device("meta"):
        model = build_model(cfg, init=False)
    shapes = conv_shapes(model, (1, 3, 8, 64, 64))
    assert sum(s.count for s in shapes) == 3 + 16 * 3 + 4
    assert {(s.kernel, s.stride) for s in shapes} == {
        ((5, 3, 3), (2, 2, 2)), ((1, 3, 3), (1, 1, 1)), ((1, 3, 3), (1, 2, 2)), ((1, 1, 1), (1, 1, 1)),
        ((1, 1, 1), (1, 2, 2)), ((3, 1, 1), (1, 1, 1))}
    macs = sum(s.macs() * s.count for s in shapes) / 1e9
    real = build_model(load_config("configs/kinetics400/rs3d_50.yaml", ["MODEL.RESNET3D.CONV_IMPL", "conv3d"]),
                       init=False)
    assert macs == pytest.approx(count_gflops(real, (8, 64, 64), conv_only=True), rel=1e-6)


def test_profile_of_a_cpu_step_counts_its_ops_and_the_busy_share():
    net = torch.nn.Conv3d(2, 4, 1)
    x = torch.randn(1, 2, 2, 4, 4)
    profile = profile_groups(lambda: net(x).sum().backward(), torch.device("cpu"))
    assert profile.groups["conv/GEMM"] > 0 and profile.kernels >= 3
    assert any("convolution" in name for name in profile.names)
    assert StepProfile({"conv/GEMM": 30.0, "copies": 20.0}, 5, []).busy_share(100.0) == 0.5


def test_levers_cover_the_issues_variants():
    names = [lever.name for lever in LEVERS]
    assert len(names) == len(set(names)) == 6
    assert {(v.conv_impl, v.fused_tail, v.compile) for v in LEVERS} == {
        ("conv3d", False, ""), ("conv3d", True, ""), ("lowered", False, ""), ("lowered", True, ""),
        ("lowered", True, "regional"), ("lowered", True, "whole")}


@pytest.mark.slow
def test_benchmark_levers_runs_on_the_cpu(tmp_path):
    """Eager variants and a compiled one (dynamo's aot_eager backend, to stay fast) print a row with a time."""
    out = subprocess.run(
        [sys.executable, "tools/benchmark_levers.py", "--cfg", "configs/toy/rs3d_tiny.yaml", "--batch-size", "2",
         "--frames", "4", "--crop", "32", "--levers", "0", "3", "4", "--warmup", "1", "--iters", "2", "--layer-iters", "2",
         "--compile-backend", "aot_eager", "--compile-timeout", "240", "--json", str(tmp_path / "r.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=290)
    assert out.returncode == 0, out.stderr[-3000:]
    table = out.stdout
    assert "torch " in table and "cuDNN" in table
    for lever in (LEVERS[0], LEVERS[3], LEVERS[4]):
        row = next(line for line in table.splitlines() if line.startswith(f"| {lever.name} "))
        assert "failed" not in row and float(row.split("|")[2]) > 0, row
    assert "per conv shape" in table and "| 1x3x3 " in table
    assert any(line.startswith("| variant") and "| busy" in line for line in table.splitlines())  # device busy share
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| fused tail ")}
    assert "div (backward)" in rows["fused tail False"] and rows["fused tail True"].rstrip(" |").endswith("none")
    assert "of the conv multiply-adds in expectation" in table
    assert (tmp_path / "r.json").stat().st_size > 100
