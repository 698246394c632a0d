"""Config loading: defaults are documented, _BASE_ inheritance, checked overrides with one-line errors."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from rs3d.config import ConfigError, get_cfg, load_config
from rs3d.config import defaults as defaults_module

ROOT = Path(REPO_ROOT)


def test_every_default_has_a_comment_line_above_it():
    lines = Path(defaults_module.__file__).read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^_C(\.\w+)+ = ", line) and "CN()" not in line:
            assert lines[i - 1].lstrip().startswith("#"), f"undocumented default: {line}"


def test_base_inheritance_and_overrides(tmp_path):
    base = tmp_path / "Base.yaml"
    base.write_text("MODEL:\n  NUM_CLASSES: 10\nSOLVER:\n  BASE_LR: 0.1\n")
    child = tmp_path / "sub" / "child.yaml"
    child.parent.mkdir()
    child.write_text("_BASE_: ../Base.yaml\nSOLVER:\n  BASE_LR: 0.2\n")
    cfg = load_config(str(child), ["SOLVER.BASE_LR", "0.4", "MODEL.RESNET3D.TEMPORAL_KERNELS", "[1, 3, 3, 3]"])
    assert cfg.MODEL.NUM_CLASSES == 10
    assert cfg.SOLVER.BASE_LR == 0.4
    assert list(cfg.MODEL.RESNET3D.TEMPORAL_KERNELS) == [1, 3, 3, 3]
    assert cfg.is_frozen()


def test_int_is_accepted_for_float_keys():
    cfg = load_config(None, ["SOLVER.BASE_LR", "1"])
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("SOLVER:\n  BASE_RL: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert str(path) in message and "SOLVER.BASE_RL" in message and "SOLVER.BASE_LR" in message
    assert "\n" not in message


def test_unknown_key_in_base_names_the_base_file(tmp_path):
    (tmp_path / "Base.yaml").write_text("MODEL:\n  NOPE: 1\n")
    (tmp_path / "child.yaml").write_text("_BASE_: Base.yaml\n")
    with pytest.raises(ConfigError, match=r"Base\.yaml: unknown config key MODEL\.NOPE"):
        load_config(str(tmp_path / "child.yaml"))


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        (["MODEL.NUM_CLASSES", "many"], r"command line: MODEL\.NUM_CLASSES expects int"),
        (["MODEL.RESNET3D.SELF_GATING", "1"], r"MODEL\.RESNET3D\.SELF_GATING expects bool"),
        (["MODEL.RESNET3D.TEMPORAL_KERNELS", "['a']"], r"TEMPORAL_KERNELS expects list"),
        (["MODEL.RESNET3D", "3"], r"MODEL\.RESNET3D is a section"),
        (["SOLVER.BASE_LR"], r"KEY VALUE pairs"),
    ],
)
def test_bad_overrides_fail_with_one_line(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern) as err:
        load_config(None, overrides)
    assert "\n" not in str(err.value)


def test_wrong_type_in_file_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("DATA:\n  NUM_FRAMES: '32'\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: DATA\.NUM_FRAMES expects int"):
        load_config(str(path))


def test_missing_file_and_base_cycle(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="_BASE_ cycle"):
        load_config(str(tmp_path / "a.yaml"))


def test_every_shipped_config_loads():
    configs = sorted((ROOT / "configs").rglob("*.yaml"))
    assert len(configs) >= 16
    for path in configs:
        load_config(str(path))


def test_defaults_are_the_tf_rs50_recipe():
    cfg = get_cfg()
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TRAIN_CROP_SIZE) == (32, 2, 224)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.REFERENCE_BATCH_SIZE, cfg.SOLVER.WEIGHT_DECAY) == (0.8, 1024, 4e-5)


@pytest.mark.slow
def test_cli_reports_config_errors_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  DEPTH: 50\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "model_table.py"), "--cfgs", str(bad)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {bad}: unknown config key MODEL.DEPTH"
    )
