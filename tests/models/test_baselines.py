"""pytorchvideo baselines built through rs3d's registry match pytorchvideo's published model zoo."""

import pytest
import torch

from rs3d.config import load_config
from rs3d.models import available_archs, build_model
from rs3d.utils.complexity import count_gflops, count_parameters

# Published pytorchvideo Kinetics-400 zoo (docs/reference_numbers.md); params in millions.
ZOO_PARAMS = {"slow_r50": 32.45, "i3d_r50": 28.04, "c2d_r50": 24.33, "r2plus1d_r50": 28.11, "x3d_m": 3.79,
              "x3d_l": 6.15}


def zoo_model(name: str, *overrides: str) -> torch.nn.Module:
    return build_model(load_config(f"configs/kinetics400/{name}.yaml", list(overrides)))


@pytest.mark.parametrize("name", sorted(ZOO_PARAMS))
def test_parameters_match_the_zoo(name):
    with torch.device("meta"):
        model = zoo_model(name)
    assert round(count_parameters(model) / 1e6, 2) == ZOO_PARAMS[name]


def test_slow_r50_exact_parameters_and_flops():
    model = zoo_model("slow_r50")
    assert count_parameters(model) == 32_454_096
    # Zoo: 54.52 conv GFLOPs per view at the 8x256x256 test view; fvcore total 41.92 at 8x224x224.
    assert count_gflops(model, (8, 256, 256), conv_only=True) == pytest.approx(54.52, rel=0.01)
    assert count_gflops(model, (8, 224, 224)) == pytest.approx(41.92, rel=0.01)


@pytest.mark.parametrize("name, zoo_gflops", [("i3d_r50", 37.53), ("c2d_r50", 25.89)])
def test_i3d_and_c2d_conv_flops_are_close_to_the_zoo(name, zoo_gflops):
    """Measured 37.10 and 25.46: both 0.43 GFLOPs under the zoo's figures (1.2% and 1.7%), the same absolute gap
    in two models whose temporal kernels differ, so it is not in the convolutions rs3d configures."""
    gflops = count_gflops(zoo_model(name), (8, 256, 256), conv_only=True)
    assert gflops == pytest.approx(zoo_gflops, rel=0.02)
    assert gflops == pytest.approx(zoo_gflops - 0.43, abs=0.01)


def test_every_baseline_is_registered():
    """Each one maps clips to logits, at larger test crops too: tests/models/test_registry.py's contract test."""
    assert set(available_archs()) >= {"resnet3d", "slow_r50", "i3d_r50", "c2d_r50", "r2plus1d_r50",
                                      "x3d_xs", "x3d_s", "x3d_m", "x3d_l"}


def test_dropout_and_frame_count_are_honoured():
    model = zoo_model("slow_r50", "MODEL.DROPOUT_RATE", "0.2", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "96")
    assert model.blocks[-1].dropout.p == 0.2
    assert model.blocks[-1].pool.kernel_size == (4, 3, 3)
