"""rs3d.list_models / create_model / get_config, configs shipped inside the package, rs3d: config names, torch.hub
entry points, and the input facts a model carries."""
import os
import shutil

import pytest
import torch
from conftest import REPO_ROOT

import rs3d
from rs3d.config import ConfigError, load_config
from rs3d.config.catalog import config_root, find_config, list_configs
from rs3d.models import build_model

REPO = REPO_ROOT
KINETICS = sorted(n[:-5] for n in os.listdir(os.path.join(REPO, "configs", "kinetics400")) if n.endswith(".yaml"))


def test_every_kinetics_and_toy_config_is_a_model_name():
    names = rs3d.list_models()
    assert set(KINETICS) <= set(names) and {"rs3d_tiny", "c2d_tiny", "r3d_tiny"} <= set(names)
    assert rs3d.list_models("x3d_*") == ["x3d_l", "x3d_m", "x3d_s", "x3d_xs"]
    assert not any(n.startswith("Base-") for n in names)


def test_create_model_equals_build_model_of_its_config():
    torch.manual_seed(0)
    a = rs3d.create_model("rs3d_tiny", num_classes=6)
    torch.manual_seed(0)
    b = build_model(load_config("configs/toy/rs3d_tiny.yaml", ["MODEL.NUM_CLASSES", "6"]))
    assert a.fc.out_features == 6
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_keywords_reach_their_config_keys():
    model = rs3d.create_model("rs3d_tiny", num_classes=3, blocks=[1, 2, 1, 1], num_frames=4, dropout_rate=0.0,
                              se_ratio=0.0)
    assert len(model.stages[1]) == 2 and model.pretrained_cfg["num_frames"] == 4
    assert model.dropout.p == 0.0
    with pytest.raises(ConfigError, match="unknown keyword"):
        rs3d.create_model("rs3d_tiny", no_such_knob=1)
    with pytest.raises(ConfigError, match="unknown model or config 'rs3d_5' \\(did you mean rs3d_50\\?\\)"):
        rs3d.create_model("rs3d_5")


def test_model_carries_its_input_facts():
    model = rs3d.create_model("x3d_s", num_classes=4)
    cfg = rs3d.get_config("x3d_s")
    facts = model.pretrained_cfg
    assert facts["num_frames"] == cfg.DATA.NUM_FRAMES == 13 and facts["sampling_rate"] == cfg.DATA.SAMPLING_RATE
    assert facts["crop_size"] == 160 and facts["test_crop_size"] == cfg.DATA.TEST_CROP_SIZE
    assert facts["num_classes"] == 4 and facts["normalization"] == cfg.DATA.NORMALIZATION
    kinetics = rs3d.create_model("finetune/slow_r50_kinetics", pretrained=False, num_classes=2).pretrained_cfg
    assert kinetics["mean"] == (0.45, 0.45, 0.45) and kinetics["std"] == (0.225, 0.225, 0.225)  # pytorchvideo's
    unit = rs3d.create_model("rs3d_tiny").pretrained_cfg  # NORMALIZATION unit: pixels / 255 only
    assert unit["normalization"] == "unit" and unit["mean"] == (0.0, 0.0, 0.0) and unit["std"] == (1.0, 1.0, 1.0)


def test_pretrained_true_names_the_published_start():
    from rs3d.models.factory import default_pretrained_source

    assert default_pretrained_source(rs3d.get_config("rs3d_101")) == "timm:resnetrs101"
    assert default_pretrained_source(rs3d.get_config("slow_r50")) == "pytorchvideo"
    with pytest.raises(ConfigError, match="custom BLOCKS"):
        rs3d.create_model("rs3d_tiny", pretrained=True)


def test_packaged_config_names_work_in_cfg_and_base(tmp_path):
    assert config_root() == os.path.join(REPO, "configs")  # a source checkout: configs/ is the package's folder
    assert find_config("rs3d:finetune/rs3d_50_imagenet") == os.path.join(REPO, "configs", "finetune",
                                                                          "rs3d_50_imagenet.yaml")
    assert "kinetics400/variants/rs3d_50_randaug" in list_configs()
    own = tmp_path / "mine.yaml"
    own.write_text("_BASE_: rs3d:rs3d_50\nMODEL:\n  NUM_CLASSES: 7\n")
    cfg = load_config(str(own))
    assert cfg.MODEL.RESNET3D.DEPTH == 50 and cfg.MODEL.NUM_CLASSES == 7 and cfg.MODEL.RESNET3D.BN_MOMENTUM == 1.0
    assert load_config("rs3d:toy/rs3d_tiny").MODEL.RESNET3D.BLOCKS == [1, 1, 1, 1]


def test_configs_resolve_from_a_copied_package_tree(tmp_path, monkeypatch):
    """An installed rs3d finds rs3d/configs beside its modules and resolves _BASE_ there (as setup.py ships it)."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(REPO, "rs3d"), site / "rs3d", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(REPO, "configs"), site / "rs3d" / "configs")
    import importlib.util

    spec = importlib.util.spec_from_file_location("copied_catalog", site / "rs3d" / "config" / "catalog.py")
    catalog = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(catalog)
    assert catalog.config_root() == str(site / "rs3d" / "configs")
    cfg = load_config(catalog.find_config("rs3d_101"))
    assert cfg.MODEL.RESNET3D.DEPTH == 101 and cfg.SOLVER.MAX_EPOCH == 350  # _BASE_ chain from the copy


def test_torch_hub_local_entry_points():
    model = torch.hub.load(REPO, "rs3d_tiny", source="local", num_classes=3, trust_repo=True)
    assert model.fc.out_features == 3
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf_under_test", os.path.join(REPO, "hubconf.py"))
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    entries = [n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")]
    assert sorted(entries) == rs3d.list_models()  # torch.hub.list's rule: public callables


def test_setup_maps_configs_and_every_command():
    text = open(os.path.join(REPO, "setup.py"), encoding="utf-8").read()
    assert '"rs3d.configs": "configs"' in text
    commands = {n[:-3] for n in os.listdir(os.path.join(REPO, "rs3d", "commands"))
                if n.endswith(".py") and n not in ("__init__.py", "base.py")}
    for module in commands:
        assert f'"{module}"' in text, f"setup.py has no console script for rs3d/commands/{module}.py"


def test_a_stored_config_does_not_repeat_its_runs_start(tmp_path):
    """A checkpoint's config names where its run started (maybe a file on another machine); rebuilding the model
    from it must not need that start: the weights come from the checkpoint."""
    from rs3d.config import config_from_text

    cfg = load_config("configs/toy/rs3d_tiny.yaml", ["MODEL.INIT.FROM", str(tmp_path / "gone.pyth")])
    with pytest.raises(ConfigError, match="is not a file"):
        build_model(cfg)
    assert build_model(cfg, init=False).fc.out_features == 8
    stored = config_from_text(cfg.dump(), "checkpoint (stored config)")
    assert stored.MODEL.INIT.FROM == "" and build_model(stored).fc.out_features == 8
