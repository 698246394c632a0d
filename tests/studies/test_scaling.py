"""Scaling strategies: generated configs load, follow the paper's rules, and the table tool runs."""
import os

import pytest
from conftest import REPO_ROOT

from rs3d.config import load_config
from rs3d.models import build_model
from rs3d.studies.scaling import AXES, along_axis, recommended, spearman, write_config
from rs3d.utils.complexity import count_parameters

ROOT = REPO_ROOT
BASE = os.path.join(ROOT, "configs/kinetics400/rs3d_50.yaml")


@pytest.mark.parametrize("axis", AXES)
def test_one_axis_varies_and_configs_load(axis, tmp_path):
    models = along_axis(axis)
    varying = {"depth": {m.depth for m in models}, "width": {m.width for m in models},
               "frames": {m.frames for m in models}, "resolution": {m.crop for m in models}}
    assert len(varying[axis]) == len(models) and all(len(v) == 1 for k, v in varying.items() if k != axis)
    cfg = load_config(write_config(models[0], BASE, str(tmp_path)))
    assert (cfg.MODEL.RESNET3D.DEPTH, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE) == \
        (models[0].depth, models[0].frames, models[0].crop)


def test_width_scaling_grows_parameters_quadratically():
    small, base = (build_model(load_config(BASE, m.overrides())) for m in along_axis("width")[1:4:2])
    assert 3.5 < count_parameters(base) / count_parameters(small) < 4.1  # width 0.5 -> 1.0


def test_recommended_strategy_follows_the_paper():
    long, short = recommended(350), recommended(90)
    assert [m.depth for m in long] == sorted(m.depth for m in long) and long[-1].depth == 420
    assert [m.frames for m in long] == sorted(m.frames for m in long) and long[-1].frames > long[0].frames
    assert all(m.width == 1.0 for m in long)  # long training: depth (with frames), not width
    assert all(m.depth == 50 for m in short) and short[-1].width == 2.0  # short training: width
    crops = [m.crop for m in long]
    assert crops == sorted(crops) and max(crops) <= 288  # resolution grows slowly


@pytest.mark.slow
def test_scaling_table_tool(tmp_path, capsys):
    from rs3d.commands import scaling_table

    tiny = os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml")  # BLOCKS [1,1,1,1]: cheap to count at 64x224
    assert scaling_table.main(["--axis", "frames", "--cfg", tiny, "--no-latency", "--write-configs",
                               str(tmp_path)]) == 0
    assert "rs3d_50_64f_224px" in capsys.readouterr().out and len(os.listdir(tmp_path)) == 5


def test_rank_correlation():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == -1.0
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
