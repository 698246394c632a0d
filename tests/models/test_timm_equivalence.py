"""2D equivalence with timm's ResNet-RS and weight inflation (timm is the independent reference; no download)."""

import pytest
import timm
import torch
from conftest import randomised
from torch import nn

from rs3d.models import inflate_2d_weights, resnet3d_rs, resnet_rs_2d_equivalent
from rs3d.utils.complexity import count_parameters

DEPTHS = [50, 101, 152, 200, 270, 350, 420]
# timm / paper parameter counts, 1000 classes (docs/reference_numbers.md).
TIMM_PARAMS = dict(zip(DEPTHS, [35_691_912, 63_618_696, 86_621_576, 93_209_992, 129_861_448, 163_956_168,
                                191_891_656]))


def randomised_timm(depth: int, seed: int = 0) -> nn.Module:
    """timm resnetrs with non-trivial BN (timm zero-inits the last BN of each block, which would hide errors)."""
    torch.manual_seed(seed)
    return randomised(timm.create_model(f"resnetrs{depth}", pretrained=False), seed)


def uninitialised_2d_equivalent(depth: int, **kwargs) -> nn.Module:
    """Built on the meta device and given real storage: fast, and every value must come from inflation."""
    with torch.device("meta"):
        model = resnet_rs_2d_equivalent(depth, num_classes=1000, **kwargs)
    return model.to_empty(device="cpu").eval()


@pytest.mark.parametrize("depth", DEPTHS)
def test_parameter_count_equals_timm(depth):
    with torch.device("meta"):
        ours = resnet_rs_2d_equivalent(depth, num_classes=1000)
        theirs = timm.create_model(f"resnetrs{depth}")
    assert count_parameters(ours) == count_parameters(theirs) == TIMM_PARAMS[depth]


@pytest.mark.parametrize("depth", DEPTHS)
def test_identical_frames_give_timm_logits(depth):
    reference = randomised_timm(depth)
    model = uninitialised_2d_equivalent(depth)
    report = inflate_2d_weights(model, reference.state_dict(), strict=True)
    assert report == ([], [], [])
    frame = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference(frame)
        logits = model(frame.unsqueeze(2).expand(-1, -1, 3, -1, -1).contiguous())
    assert expected.abs().max() > 0.1  # a real signal, not all zeros
    assert (logits - expected).abs().max() <= 1e-4


def inflated_model(method: str, conv_impl: str = "conv3d") -> nn.Module:
    """RS-50 with real temporal kernels (stem 5, stages 1,1,3,3), loaded from timm by inflation."""
    model = uninitialised_2d_equivalent(50, stem_temporal_kernel=5, stem_temporal_stride=2,
                                        temporal_kernels=(1, 1, 3, 3), conv_impl=conv_impl)
    report = inflate_2d_weights(model, randomised_timm(50).state_dict(), method=method, strict=True)
    assert report == ([], [], [])
    return model


@pytest.mark.parametrize("conv_impl", ["conv3d", "lowered"])
def test_center_inflation_keeps_logits_exactly(conv_impl):
    reference = randomised_timm(50)
    model = inflated_model("center", conv_impl)
    assert model.stem.conv1.weight.shape[2] == 5 and model.stages[3][0].conv1.weight.shape[2] == 3
    memory_format = torch.channels_last_3d if conv_impl == "lowered" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    frame = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        logits = model(frame.unsqueeze(2).expand(-1, -1, 8, -1, -1).contiguous(memory_format=memory_format))
        expected = reference(frame)
    assert (logits - expected).abs().max() <= 1e-4


def test_mean_inflation_matches_2d_away_from_temporal_padding():
    reference = randomised_timm(50)
    model = inflated_model("mean")
    frame = torch.rand(1, 3, 64, 64)
    frames = 48
    with torch.no_grad():
        features = model.forward_features(frame.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous())
        expected = reference.forward_features(frame)
    # Stem conv kt=5, stride 2: output t reads inputs 2t-2..2t+2, valid for 1 <= t <= 22 of 24.
    # Stages 3 and 4 stack 6 + 3 convs with kt=3: each widens the receptive field by one step on either side.
    valid = [t for t in range(features.shape[2]) if t - 9 >= 1 and t + 9 <= 22]
    assert valid == [10, 11, 12, 13]
    for t in valid:
        torch.testing.assert_close(features[:, :, t], expected, atol=1e-4, rtol=1e-4)
    # At the clip border the zero padding is inside the receptive field, so the property must break there.
    assert (features[:, :, 0] - expected).abs().max() > 1e-3


def test_inflation_into_the_tf_style_model_reports_what_it_cannot_load():
    model = resnet3d_rs(50, num_classes=400)  # max-pool stem, TF shortcuts, self-gating
    report = inflate_2d_weights(model, randomised_timm(50).state_dict())
    assert {k.split(".")[-2] for k in report.missing if ".gate." in k} == {"fc"}
    assert any(k.startswith("maxpool.") for k in report.unexpected)
    assert report.mismatched == ["fc.weight", "fc.bias"]
    assert not any(k.startswith("stages.0.0.conv1") for k in report.missing)
    with pytest.raises(ValueError, match="inflation is not exact"):
        inflate_2d_weights(model, randomised_timm(50).state_dict(), strict=True)
