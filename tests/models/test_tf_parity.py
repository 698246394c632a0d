"""Numerical parity with the TF Model Garden 3D ResNet(-RS): same weights, same logits, with padding="tf_same".

The fixtures come from tf-models-official 2.20.0 (tests/fixtures/tf/make_tf_fixture.py), on tiny custom specs
with every weight and BN statistic randomised, evaluated on an even-sized and an odd-sized clip.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from rs3d.models.resnet3d import ResNet3D
from rs3d.models.tf_port import load_tf_model_garden_weights

FIXTURES = Path(REPO_ROOT) / "tests" / "fixtures" / "tf"

SPECS = {
    "rs_tiny": dict(
        blocks=(1, 2, 2, 1), widths=(4, 8, 8, 16), stem_type="v1", pool_temporal_stride=1,
        temporal_kernels=((1,), (1, 1), (3, 3), (3,)), temporal_strides=(1, 1, 2, 1),
        se_ratio=0.25, drop_path_rate=0.1,
    ),
    "r3d_tiny": dict(
        blocks=(1, 2, 2, 1), widths=(4, 8, 16, 32), stem_type="v0", pool_temporal_stride=2,
        temporal_kernels=((3,), (3, 1), (1, 3), (1,)), temporal_strides=(1, 1, 1, 1),
        se_ratio=0.0, drop_path_rate=0.0,
    ),
}


def build(name: str, padding: str, conv_impl: str = "conv3d") -> tuple[ResNet3D, dict]:
    arrays = dict(np.load(FIXTURES / f"{name}.npz"))
    model = ResNet3D(num_classes=5, stem_width=64, stem_temporal_kernel=5, stem_temporal_stride=2,
                     self_gating=True, padding=padding, bn_eps=1e-5, conv_impl=conv_impl, **SPECS[name])
    load_tf_model_garden_weights(model, arrays)
    if conv_impl == "lowered":  # the 2D views need channels_last_3d tensors
        model = model.to(memory_format=torch.channels_last_3d)
    return model.eval(), arrays


def to_ncthw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(0, 4, 1, 2, 3).contiguous()


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("suffix", ["", "_odd"])
@pytest.mark.parametrize("conv_impl", ["conv3d", "lowered"])
def test_tf_same_padding_reproduces_tf_logits_and_endpoints(name, suffix, conv_impl):
    model, arrays = build(name, "tf_same", conv_impl)
    clip = to_ncthw(arrays[f"input{suffix}"])
    if conv_impl == "lowered":  # TF's NDHWC input is channels_last_3d as it comes
        clip = torch.from_numpy(arrays[f"input{suffix}"]).permute(0, 4, 1, 2, 3)
        assert clip.is_contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        x = model.stem(clip)
        torch.testing.assert_close(x, to_ncthw(arrays[f"stem_output{suffix}"]), atol=1e-4, rtol=1e-4)
        for level, stage in enumerate(model.stages, start=2):
            x = stage(x)
            expected = to_ncthw(arrays[f"endpoint{'_odd' if suffix else ''}_{level}"])
            torch.testing.assert_close(x, expected, atol=1e-4, rtol=1e-4)
        logits = model.forward_head(x)
    reference = torch.from_numpy(arrays[f"logits{suffix}"])
    assert (logits - reference).abs().max() <= 1e-4


def test_symmetric_padding_does_not_match_tf():
    """Why the padding key exists: same weights, PyTorch padding, visibly different logits."""
    model, arrays = build("rs_tiny", "torch")
    with torch.no_grad():
        logits = model(to_ncthw(arrays["input"]))
    assert (logits - torch.from_numpy(arrays["logits"])).abs().max() > 1e-3


def test_loader_rejects_weights_that_do_not_fit():
    arrays = dict(np.load(FIXTURES / "rs_tiny.npz"))
    model = ResNet3D(blocks=(1, 2, 2, 1), widths=(4, 8, 8, 32), num_classes=5, **{
        k: v for k, v in SPECS["rs_tiny"].items() if k not in ("blocks", "widths")})
    with pytest.raises(ValueError, match=r"TF weight s3/b0/\w+/\w+ -> stages\.3\.0\."):
        load_tf_model_garden_weights(model, arrays)
