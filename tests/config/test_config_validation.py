"""Every setting is checked when the config loads (issue 20): a wrong value for any key with fixed values, or a number
out of range, ends `rs3d-train` with one `error:` line naming the key, the value and what is allowed, exit status 2,
before any data is read; the table agrees with the constants of the layers that use the values."""
import os

import pytest
from conftest import ROOT

from rs3d.commands import base as cli
from rs3d.commands import train
from rs3d.config import ConfigError, load_config
from rs3d.config.checks import RULES, Choice
from rs3d.utils.cpus import auto_workers, cgroup_cpu_limit

TOY = os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml")

#: A wrong value for each key; the allowed values the message must list. Choice keys come from the table itself
#: (a key added there is tried here too); MODEL.ARCH is checked against the model registry.
CHOICE_CASES = sorted((key, rule) for key, rule in RULES.items() if isinstance(rule, Choice))

RANGE_CASES = [
    ("DATA.FLIP_PROB", "1.5", "in [0, 1]"),
    ("SOLVER.LABEL_SMOOTHING", "1.0", "in [0, 1)"),
    ("MODEL.RESNET3D.DROP_PATH_RATE", "-0.1", "in [0, 1)"),
    ("TRAIN.BATCH_SIZE", "0", "an integer >= 1"),
    ("DATA.NUM_FRAMES", "0", "an integer >= 1"),
    ("SOLVER.BASE_LR", "0.0", "a number > 0"),
    ("DATA_LOADER.NUM_WORKERS", "-1", "auto or an integer >= 0"),
    ("DATA_LOADER.NUM_WORKERS", "many", "auto or an integer >= 0"),
    ("DATA.TRAIN_CROP_AREA", "[0.5, 0.1]", "increasing order"),
    ("DATA.STD", "[0.2, 0.0, 0.2]", "a number > 0"),
]


def wrong_value(rule: Choice):
    return 2 if all(isinstance(v, int) for v in rule.values) else "nosuch"


def train_error(tmp_path, capsys, *overrides):
    """Run rs3d-train in process (its real command path) on the toy config with a data folder that would be
    generated on first use; return the one error line."""
    data = tmp_path / "data"
    argv = ["--cfg", TOY, "DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(tmp_path / "out"), *overrides]
    with pytest.raises(SystemExit) as info:
        cli.run(lambda: train.main(argv))
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not data.exists(), "the data was touched before the config was checked"
    return err


@pytest.mark.parametrize("key, rule", CHOICE_CASES, ids=[k for k, _ in CHOICE_CASES])
def test_a_wrong_value_of_every_enumerated_key_fails_before_any_data_is_read(tmp_path, capsys, key, rule):
    bad = wrong_value(rule)
    extra = ["MODEL.RESNET3D.BLOCKS", "[]"] if rule.unless else []  # DEPTH counts only without explicit BLOCKS
    err = train_error(tmp_path, capsys, key, str(bad), *extra)
    assert key in err and repr(bad) in err, err
    for allowed in rule.values:
        assert (repr(allowed) if allowed == "" else str(allowed)) in err, err


def test_an_unknown_architecture_fails_before_any_data_is_read(tmp_path, capsys):
    err = train_error(tmp_path, capsys, "MODEL.ARCH", "resnet9000")
    assert "MODEL.ARCH: 'resnet9000' is not one of" in err and "resnet3d" in err and "x3d_m" in err, err


@pytest.mark.parametrize("key", ["DATA.DECODING_BACKEND", "DATA.FALLBACK_BACKEND"])
def test_an_unknown_decoding_backend_fails_before_any_data_is_read(tmp_path, capsys, key):
    err = train_error(tmp_path, capsys, key, "ffmpeg")
    assert f"{key}: 'ffmpeg' is not one of decord, pyav" in err, err  # the registry's names


@pytest.mark.parametrize("key, value, allowed", RANGE_CASES, ids=[f"{k}={v}" for k, v, _ in RANGE_CASES])
def test_numbers_out_of_range_fail_with_one_line(tmp_path, capsys, key, value, allowed):
    err = train_error(tmp_path, capsys, key, value)
    assert f"command line: {key}: " in err and allowed in err, err


def test_a_wrong_value_in_a_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"_BASE_: {TOY}\nDATA:\n  SHORT_VIDEO: stretch\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: DATA.SHORT_VIDEO: 'stretch' is not one of loop, pad"):
        load_config(str(bad))


def test_rules_that_tie_keys_together():
    with pytest.raises(ConfigError, match="RANDAUGMENT_MAGNITUDE: 31 is not a bin 0-30"):
        load_config(TOY, ["DATA.RANDAUGMENT_POLICY", "torchvision", "DATA.RANDAUGMENT_MAGNITUDE", "31"])
    assert load_config(TOY, ["DATA.RANDAUGMENT_MAGNITUDE", "31"]).DATA.RANDAUGMENT_MAGNITUDE == 31  # TF scale
    with pytest.raises(ConfigError, match="MODEL.RESNET3D.DEPTH: 18"):
        load_config(TOY, ["MODEL.RESNET3D.DEPTH", "18", "MODEL.RESNET3D.BLOCKS", "[]"])
    assert load_config(TOY, ["MODEL.RESNET3D.DEPTH", "18"]).MODEL.RESNET3D.DEPTH == 18  # BLOCKS set: unused


def test_the_table_agrees_with_the_layers_that_use_the_values():
    from rs3d.data.annotations import MISSING_FILE_POLICIES
    from rs3d.data.clip_sampling import SHORT_VIDEO_MODES
    from rs3d.data.transforms import RANDAUGMENT_POLICIES, TRAIN_CROP_MODES
    from rs3d.evaluation.multiview import AGGREGATIONS
    from rs3d.models.pretrained import INFLATE_METHODS
    from rs3d.models.resnet3d import RS_BLOCKS
    from rs3d.utils.precision import PRECISIONS

    expected = {
        "DATA.SHORT_VIDEO": SHORT_VIDEO_MODES, "DATA.TRAIN_CROP_MODE": TRAIN_CROP_MODES,
        "DATA.RANDAUGMENT_POLICY": RANDAUGMENT_POLICIES, "DATA.MISSING_FILES": MISSING_FILE_POLICIES,
        "TEST.VIEW_AGGREGATION": AGGREGATIONS, "MODEL.INIT.INFLATE": INFLATE_METHODS,
        "MODEL.RESNET3D.DEPTH": tuple(RS_BLOCKS), "TRAIN.MIXED_PRECISION": PRECISIONS,
    }
    for key, values in expected.items():
        assert set(RULES[key].values) == set(values), key


def test_every_rule_names_a_key_that_exists_and_accepts_its_default():
    from rs3d.config import get_cfg
    from rs3d.config.checks import check_value, lookup

    cfg = get_cfg()
    for key in RULES:
        found, value = lookup(cfg, key)
        assert found, f"{key} is in the table but not in the defaults"
        check_value(key, value, "defaults", cfg)


def test_builders_raise_config_errors_for_settings_made_in_code(toy_dir, tmp_path):
    from rs3d.data import build_dataset

    cfg = load_config(TOY, ["DATA.PATH_TO_DATA_DIR", toy_dir, "OUTPUT_DIR", str(tmp_path), "DATA.TOY_DATASET",
                            "False"])
    cfg.defrost()
    cfg.DATA.TRAIN_CROP_MODE = "zoom"  # past the loader's checks
    with pytest.raises(ConfigError, match="zoom"):
        build_dataset(cfg, "train")


# ---------------------------------------------------------------- DATA_LOADER.NUM_WORKERS
def test_num_workers_takes_auto_or_an_integer(tmp_path):
    assert load_config(TOY).DATA_LOADER.NUM_WORKERS == "auto"
    assert load_config(TOY, ["DATA_LOADER.NUM_WORKERS", "2"]).DATA_LOADER.NUM_WORKERS == 2
    yaml = tmp_path / "w.yaml"
    yaml.write_text(f"_BASE_: {TOY}\nDATA_LOADER:\n  NUM_WORKERS: 3\n")
    assert load_config(str(yaml)).DATA_LOADER.NUM_WORKERS == 3


@pytest.mark.parametrize("cpus, local, workers", [(2, 1, 1), (1, 1, 1), (16, 1, 15), (64, 1, 16), (96, 8, 11),
                                                  (16, 2, 7), (4, 8, 1)])
def test_auto_workers_share_the_cpus_among_local_processes(cpus, local, workers):
    assert auto_workers(cpus, local) == workers


def test_cgroup_quota_is_read_for_v2_and_v1(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job/step\n")
    (tmp_path / "job" / "step").mkdir(parents=True)
    (tmp_path / "job" / "step" / "cpu.max").write_text("max 100000\n")
    (tmp_path / "job" / "cpu.max").write_text("250000 100000\n")  # the job's quota, on a parent
    assert cgroup_cpu_limit(str(tmp_path), str(proc)) == 2.5
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(str(tmp_path), str(proc)) is None
    proc.write_text("4:cpu,cpuacct:/docker/abc\n")
    folder = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("400000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(str(tmp_path), str(proc)) == 4.0


def test_auto_workers_are_logged_at_start(toy_dir, tmp_path, caplog, monkeypatch):
    import logging

    from rs3d.engine import Trainer

    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    from rs3d.engine.hooks.diagnosis import InputBoundHook, InputBoundReport

    cfg = load_config(TOY, ["DATA.PATH_TO_DATA_DIR", toy_dir, "OUTPUT_DIR", str(tmp_path), "DATA.TOY_DATASET",
                            "False", "TRAIN.BATCH_SIZE", "8", "DATA.AUGMENT_ON_DEVICE", "True"])
    with caplog.at_level(logging.INFO, logger="rs3d"):
        trainer = Trainer(cfg)
    expected = max(1, min(16, len(os.sched_getaffinity(0)) - 1))  # no CPU quota on the test machines
    assert f"{expected} loader workers per process (DATA_LOADER.NUM_WORKERS auto: " in caplog.text
    assert trainer.train_loader.num_workers == expected == trainer.num_workers
    hook = next(h for h in trainer.hooks if isinstance(h, InputBoundHook))  # never advises what is already on
    advice = hook.message(InputBoundReport(10, 9.0, 1.0, 8))
    assert "INPUT-BOUND" in advice and "AUGMENT_ON_DEVICE" not in advice
    assert f"DATA_LOADER.NUM_WORKERS is {expected};" in advice


def test_auto_workers_divide_among_torchrun_local_ranks(monkeypatch):
    from rs3d.data import workers

    monkeypatch.setattr(workers, "usable_cpus", lambda: 16)  # a 16-core GPU host
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert workers.resolve_num_workers("auto") == 15
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # what torchrun sets for 2 processes on this machine
    assert workers.resolve_num_workers("auto") == 7 and workers.resolve_num_workers(3) == 3
    assert "16 usable CPUs shared by 2 local process(es)" in workers.describe_num_workers("auto")
