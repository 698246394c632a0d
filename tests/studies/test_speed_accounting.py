"""FLOP accounting for MFU: fvcore counts multiply-adds, a training step is 6x that, and GPU peaks by name."""
import pytest
import torch

from rs3d.studies.speed import TRAIN_FLOPS_PER_MAC, mfu, peak_tflops
from rs3d.utils.complexity import count_gflops


def test_fvcore_counts_multiply_adds():
    conv = torch.nn.Conv3d(3, 8, kernel_size=(1, 3, 3), padding=(0, 1, 1), bias=False)
    # One output value = 3 x 1 x 3 x 3 = 27 multiply-adds; 8 channels x 4 x 6 x 6 outputs.
    assert count_gflops(conv, (4, 6, 6)) * 1e9 == pytest.approx(27 * 8 * 4 * 6 * 6)
    assert TRAIN_FLOPS_PER_MAC == 6  # 2 FLOPs per multiply-add, backward = 2 x forward


@pytest.mark.parametrize("name, bf16, tf32", [
    ("NVIDIA H100 80GB HBM3", 989.4, 494.7),  # SXM
    ("NVIDIA H100 PCIe", 756.0, 378.0),
    ("NVIDIA H100 NVL", 835.0, 417.5),
    ("NVIDIA H200", 989.4, 494.7),
    ("NVIDIA A100-SXM4-80GB", 312.0, 156.0),
])
def test_peaks_tell_the_h100_variants_apart(name, bf16, tf32):
    assert peak_tflops(name, True) == bf16 and peak_tflops(name, False) == tf32


def test_mfu():
    assert peak_tflops("Some Unknown GPU", True) is None and mfu(10.0, 88.0, None) is None
    # RS3D-50 at 32x224: 88 G multiply-adds a clip; 650 clips/s on a 989.4 TFLOP/s GPU is ~34.7% MFU.
    assert mfu(650.0, 88.0, 989.4) == pytest.approx(650 * 6 * 88e9 / 989.4e12)
    assert 0.34 < mfu(650.0, 88.0, 989.4) < 0.35
