"""Every input mistake a user can make on the command line ends in one ``error:`` line and status 2, never a
traceback (config, checkpoint, class names, paths, CSV)."""
import json
import os

import pytest
import torch
from conftest import ROOT, TINY, tiny_cfg

from rs3d.commands import base as cli
from rs3d.commands import check_data, predict, test, train
from rs3d.models import build_model

CFG = os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A model checkpoint without a config, a video, a data folder with a broken CSV, junk files."""
    from conftest import moving_frames, write_h264

    root = tmp_path_factory.mktemp("cli_inputs")
    cfg = tiny_cfg(str(root / "data"), root / "out")
    torch.save({"model": build_model(cfg).state_dict()}, root / "no_config.pyth")
    torch.save({"model": build_model(cfg).state_dict(), "config": cfg.dump()}, root / "with_config.pyth")
    (root / "junk.pyth").write_bytes(b"PK\x03\x04 not really a zip")
    write_h264(str(root / "clip.mp4"), moving_frames(20))
    (root / "three_names.json").write_text(json.dumps(["a", "b", "c"]))
    (root / "bad.json").write_text("{not json")
    data = root / "data"
    data.mkdir()
    (data / "classnames.json").write_text(json.dumps([f"c{i}" for i in range(8)]))
    for split in ("train", "val", "test"):
        (data / f"{split}.csv").write_text("clip.mp4 not_a_number\n")
    (root / "bad.yaml").write_text("MODEL: [unclosed\n")
    return root


def one_error_line(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(lambda: main(argv))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_predict_errors(inputs, capsys):
    video = str(inputs / "clip.mp4")
    cases = [
        ([video, "--checkpoint", str(inputs / "no_config.pyth")], "holds no config"),
        ([video, "--checkpoint", str(inputs / "with_config.pyth"), "--class-names", str(inputs / "three_names.json")],
         "three_names.json: 3 class names for a model with 8 classes"),
        ([video, "--checkpoint", str(inputs / "with_config.pyth"), "--class-names", str(inputs / "bad.json")],
         "bad.json: cannot read class names"),
        ([video, "--checkpoint", str(inputs / "with_config.pyth"), "--class-names", str(inputs / "none.json")],
         "none.json: cannot read class names"),
        ([video, "--checkpoint", str(inputs / "missing.pyth")], "missing.pyth: checkpoint not found"),
        ([video, "--checkpoint", str(inputs / "junk.pyth")], "junk.pyth: not a readable checkpoint"),
        ([video, "--checkpoint", str(inputs / "with_config.pyth"), "--cfg", str(inputs / "none.yaml")],
         "none.yaml: config file not found"),
        ([video, "--checkpoint", str(inputs / "with_config.pyth"), "--cfg", str(inputs / "bad.yaml")],
         "bad.yaml: invalid YAML"),
        ([video, "--checkpoint", str(inputs / "with_config.pyth"), "--output", str(inputs / "out.txt")],
         "--output must end in .json or .csv"),
        ([str(inputs / "nothing_here*.mp4"), "--checkpoint", str(inputs / "with_config.pyth")], "no videos found"),
        ([video, "--checkpoint", str(inputs / "with_config.pyth"), "--opts", "MODEL.NUM_CLASES", "3"],
         "unknown config key MODEL.NUM_CLASES"),
    ]
    for argv, expected in cases:
        assert expected in one_error_line(predict.main, argv, capsys), argv


def test_train_and_test_errors(inputs, capsys, tmp_path):
    data, out = str(inputs / "data"), str(tmp_path / "out")
    common = ["--cfg", CFG, *TINY, "OUTPUT_DIR", out]
    cases = [
        (train.main, ["--cfg", str(inputs / "none.yaml")], "none.yaml: config file not found"),
        (train.main, ["--cfg", str(inputs / "bad.yaml")], "bad.yaml: invalid YAML"),
        (train.main, [*common, "DATA.PATH_TO_DATA_DIR", str(tmp_path / "no_data")], "no_data"),
        (train.main, [*common, "DATA.PATH_TO_DATA_DIR", data], "train.csv"),
        (train.main, [*common, "DATA.PATH_TO_DATA_DIR", data, "DATA.CLASS_NAMES_FILE", str(inputs / "bad.json")],
         "bad.json"),
        (train.main, [*common, "DATA.PATH_TO_DATA_DIR", data, "TRAIN.CHECKPOINT_FILE", str(inputs / "junk.pyth")],
         "junk.pyth"),
        (test.main, [*common, "DATA.PATH_TO_DATA_DIR", data, "TEST.CHECKPOINT_FILE", str(inputs / "missing.pyth")],
         "missing.pyth"),
        (check_data.main, [str(tmp_path / "no_data")], "no_data"),
    ]
    for main, argv, expected in cases:
        assert expected in one_error_line(main, argv, capsys), argv


def test_predict_takes_trailing_key_value_overrides_like_every_command():
    from rs3d.commands.base import split_overrides

    assert split_overrides(["a.mp4", "dir/", "TEST.NUM_ENSEMBLE_VIEWS", "4", "DATA.TEST_CROP_SIZE", "128"]) == (
        ["a.mp4", "dir/"], ["TEST.NUM_ENSEMBLE_VIEWS", "4", "DATA.TEST_CROP_SIZE", "128"])
    assert split_overrides(["clips/*.mp4"]) == (["clips/*.mp4"], [])


@pytest.mark.parametrize("option,value,message", [
    ("--topk", "0", "--topk must be at least 1"), ("--topk", "-1", "--topk must be at least 1"),
    ("--batch-size", "0", "--batch-size must be at least 1"),
    ("--window-sec", "-1", "--window-sec must be a positive number"), ("--window-sec", "nan", "positive number"),
    ("--window-sec", "0", "positive number"), ("--stride-sec", "0", "--stride-sec must be a positive number"),
    ("--device", "tpu", "--device must be auto, cpu or cuda"),
])
def test_predict_option_ranges(inputs, capsys, option, value, message):
    """Out-of-range options stop with one line before any model is loaded (issue 25), instead of being ignored."""
    err = one_error_line(predict.main, [str(inputs / "clip.mp4"), "--checkpoint", str(inputs / "missing.pyth"),
                                        option, value], capsys)
    assert message in err
