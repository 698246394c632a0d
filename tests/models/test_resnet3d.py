"""rs3d's 3D ResNet-RS: TF Model Garden parameter counts, shapes, knobs, padding and block structure."""

import pytest
import torch
from torch import nn

from rs3d.config import ConfigError, load_config
from rs3d.models.conv import PaddedConv3d
from rs3d.models.factory import build_model
from rs3d.models.layers import DropPath, PaddedMaxPool3d, SelfGating3d, SqueezeExcite3d
from rs3d.models.padding import same_padding
from rs3d.models.resnet3d import (
    Bottleneck3d,
    ResNet3D,
    resnet3d_r50_baseline,
    resnet3d_rs,
)
from rs3d.utils.complexity import count_parameters

# Trainable parameters of tf-models-official 2.20.0 with a 400-class head (docs/reference_numbers.md).
TF_PARAMS = {50: 48_129_840, 101: 84_969_520, 152: 114_788_144, 200: 121_376_560}
TF_R3D50_PARAMS = 33_617_872
TF_BN_STATS = {50: 53_248, 101: 105_472, 152: 151_552, 200: 176_128}


def tiny(**kwargs) -> ResNet3D:
    options = dict(blocks=(1, 1, 1, 1), widths=(4, 8, 8, 16), stem_width=8, num_classes=5)
    options.update(kwargs)
    return ResNet3D(**options)


@pytest.mark.parametrize("depth", sorted(TF_PARAMS))
def test_rs3d_config_matches_tf_parameter_count(depth):
    with torch.device("meta"):
        model = build_model(load_config(f"configs/kinetics400/rs3d_{depth}.yaml"))
    assert count_parameters(model) == TF_PARAMS[depth]
    bn_stats = sum(m.running_mean.numel() * 2 for m in model.modules() if isinstance(m, nn.BatchNorm3d))
    assert bn_stats == TF_BN_STATS[depth]


def test_r3d50_baseline_config_matches_tf_parameter_count():
    with torch.device("meta"):
        model = build_model(load_config("configs/kinetics400/r3d_50.yaml"))
        preset = resnet3d_r50_baseline()
    assert count_parameters(model) == count_parameters(preset) == TF_R3D50_PARAMS


def test_rs3d50_structure_follows_tf():
    with torch.device("meta"):
        model = resnet3d_rs(50)
    stem = model.stem
    assert [tuple(c.kernel_size) for c in (stem.conv1, stem.conv2, stem.conv3)] == [(5, 3, 3), (1, 3, 3), (1, 3, 3)]
    assert [c.out_channels for c in (stem.conv1, stem.conv2, stem.conv3)] == [32, 32, 64]
    assert tuple(stem.conv1.stride) == (2, 2, 2) and all(c.bias is None for c in (stem.conv1, stem.conv2))
    assert isinstance(stem.pool, PaddedMaxPool3d) and stem.pool.kernel_size == (1, 3, 3) and stem.pool.stride == (1, 2, 2)
    for i, stage in enumerate(model.stages):
        assert [b.conv1.kernel_size[0] for b in stage] == [[1, 1, 3, 3][i]] * len(stage)
        assert [isinstance(b.gate, SelfGating3d) for b in stage] == [False] * (len(stage) - 1) + [True]
        assert all(isinstance(b.se, SqueezeExcite3d) and b.se.fc1.out_channels == b.conv1.out_channels
                   for b in stage)
        assert [b.drop_path.rate for b in stage] == pytest.approx([0.1 * (i + 2) / 5] * len(stage))
        assert isinstance(stage[0].shortcut, nn.Sequential)  # channels change at every stage entry
    assert all(m.eps == 1e-5 for m in model.modules() if isinstance(m, nn.BatchNorm3d))


def test_output_shapes_at_train_and_test_crops():
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = resnet3d_rs(50, num_classes=7).eval()
        feats = model.forward_features(torch.empty(1, 3, 32, 224, 224))
        assert feats.shape == (1, 2048, 16, 7, 7)  # TF: 16x7x7x2048 at 32x224
        with torch.no_grad():
            assert model(torch.empty(2, 3, 8, 256, 256)).shape == (2, 7)
            assert model(torch.empty(1, 3, 5, 97, 131)).shape == (1, 7)
    for padding in ("torch", "tf_same"):
        with torch.device("meta"):
            tf_model = resnet3d_rs(50, num_classes=7, padding=padding)
            assert tf_model.forward_features(torch.empty(1, 3, 32, 224, 224)).shape == (1, 2048, 16, 7, 7)


def test_r3d50_baseline_temporal_downsampling():
    with torch.no_grad():
        feats = resnet3d_r50_baseline().eval().forward_features(torch.rand(1, 3, 32, 64, 64))
    assert feats.shape[2] == 8  # TF R3D-50: 8x7x7x2048 at 32x224 (stem stride 2, pool stride 2)


@pytest.mark.parametrize(
    "knobs, expected_t",
    [
        (dict(stem_temporal_stride=1), 16),
        (dict(stem_temporal_stride=2, pool_temporal_stride=2), 4),
        (dict(temporal_strides=(1, 2, 1, 2)), 2),
        (dict(stem_temporal_kernel=1, stem_temporal_stride=1, temporal_kernels=(1, 1, 1, 1)), 16),
    ],
)
def test_temporal_knobs_change_the_temporal_resolution(knobs, expected_t):
    with torch.no_grad():
        out = tiny(**knobs).eval().forward_features(torch.rand(1, 3, 16, 32, 32))
    assert out.shape[2] == expected_t


def test_per_block_temporal_kernels_and_errors():
    model = tiny(blocks=(1, 2, 1, 1), temporal_kernels=([3], [1, 5], 3, [1]))
    assert [b.conv1.kernel_size[0] for stage in model.stages for b in stage] == [3, 1, 5, 3, 1]
    with pytest.raises(ValueError, match="stage 1 has 2 blocks but 1 temporal kernels"):
        tiny(blocks=(1, 2, 1, 1), temporal_kernels=([3], [1], 3, [1]))


def test_shortcut_kinds():
    projection = Bottleneck3d(16, 8, spatial_stride=2)
    assert isinstance(projection.shortcut, nn.Sequential) and projection.shortcut.conv.stride == (1, 2, 2)
    pooled = Bottleneck3d(32, 8, spatial_stride=2, temporal_stride=2)
    assert isinstance(pooled.shortcut, nn.MaxPool3d) and pooled.shortcut.stride == (2, 2, 2)
    assert isinstance(Bottleneck3d(32, 8).shortcut, nn.Identity)
    avg = Bottleneck3d(16, 8, spatial_stride=2, shortcut="avg_down").shortcut
    assert isinstance(avg.pool, nn.AvgPool3d) and avg.conv.stride == (1, 1, 1)
    x = torch.rand(2, 32, 4, 8, 8)
    assert torch.equal(pooled.shortcut(x), x[:, :, ::2, ::2, ::2])


def test_tf_same_padding_values():
    # Stem [5,3,3] stride 2 on 32x224x224: T (1,2), H (0,1), W (0,1) (F.pad order is W, H, T).
    assert same_padding((32, 224, 224), (5, 3, 3), (2, 2, 2)) == [0, 1, 0, 1, 1, 2]
    assert same_padding((16, 112, 112), (1, 3, 3), (1, 2, 2)) == [0, 1, 0, 1, 0, 0]
    assert same_padding((7, 33, 35), (3, 3, 3), (1, 1, 1)) == [1, 1, 1, 1, 1, 1]


def test_tf_same_and_torch_padding_agree_in_shape_but_not_values():
    torch.manual_seed(0)
    conv_torch = PaddedConv3d(3, 4, (5, 3, 3), (2, 2, 2), padding="torch")
    conv_tf = PaddedConv3d(3, 4, (5, 3, 3), (2, 2, 2), padding="tf_same")
    conv_tf.load_state_dict(conv_torch.state_dict())
    x = torch.rand(1, 3, 8, 16, 16)
    a, b = conv_torch(x), conv_tf(x)
    assert a.shape == b.shape == (1, 4, 4, 8, 8)
    assert not torch.allclose(a, b)
    # TF SAME pads (1, 2) in time: output t=0 reads inputs -1..3, i.e. torch's window shifted by +1.
    reference = torch.nn.functional.conv3d(torch.nn.functional.pad(x, (0, 1, 0, 1, 1, 2)), conv_torch.weight,
                                           conv_torch.bias, stride=2)
    torch.testing.assert_close(b, reference)
    pool = PaddedMaxPool3d((3, 3, 3), (2, 2, 2), padding="tf_same")
    y = -torch.rand(1, 1, 4, 4, 4)  # all negative: a zero pad would win the max, -inf must not
    assert pool(y).max() < 0


def test_drop_path_is_identity_in_eval_and_unbiased_in_train():
    drop = DropPath(0.5)
    x = torch.ones(4000, 1, 1, 1, 1)
    assert torch.equal(drop.eval()(x), x)
    out = drop.train()(x)
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert abs(out.mean().item() - 1.0) < 0.1


def test_init_follows_tf():
    model = tiny(num_classes=3)
    assert model.fc.weight.abs().max() <= 0.05 and torch.count_nonzero(model.fc.bias) == 0
    gate = model.stages[0][0].gate.fc.weight
    assert gate.abs().max() <= 0.02 and gate.std() < 0.015


def test_bad_config_values_are_config_errors():
    with pytest.raises(ConfigError, match=r"MODEL\.RESNET3D\.DEPTH: 34 is not one of"):
        build_model(load_config(None, ["MODEL.RESNET3D.DEPTH", "34"]))
    with pytest.raises(ConfigError, match=r"MODEL\.RESNET3D\.STEM_TYPE: 'v2' is not one of v1, v0"):  # at load
        build_model(load_config(None, ["MODEL.RESNET3D.STEM_TYPE", "v2"]))
    with pytest.raises(ConfigError, match=r"MODEL\.ARCH: unknown architecture 'resnet9'"):
        build_model(load_config(None, ["MODEL.ARCH", "resnet9"]))


def test_every_knob_is_a_config_key():
    cfg = load_config(None, [
        "MODEL.RESNET3D.BLOCKS", "[1, 1, 1, 1]", "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.25",
        "MODEL.RESNET3D.STEM_WIDTH", "16", "MODEL.RESNET3D.STEM_TEMPORAL_KERNEL", "3",
        "MODEL.RESNET3D.STEM_TEMPORAL_STRIDE", "1", "MODEL.RESNET3D.POOL_TEMPORAL_STRIDE", "2",
        "MODEL.RESNET3D.TEMPORAL_STRIDES", "[1, 1, 2, 1]", "MODEL.RESNET3D.TEMPORAL_KERNELS", "[3, 3, 3, 3]",
        "MODEL.NUM_CLASSES", "6",
    ])
    model = build_model(cfg)
    assert model.stem.conv1.kernel_size == (3, 3, 3) and model.stem.conv1.stride == (1, 2, 2)
    assert model.stem.pool.kernel_size == (3, 3, 3) and model.stem.pool.stride == (2, 2, 2)
    assert [s[0].conv1.out_channels for s in model.stages] == [16, 32, 64, 128]
    assert model.stages[2][0].conv1.stride == (2, 1, 1)
    with torch.no_grad():
        out = model.eval().forward_features(torch.rand(1, 3, 16, 64, 64))
    assert out.shape == (1, 512, 4, 2, 2)
