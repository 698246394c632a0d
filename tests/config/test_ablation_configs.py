"""The ResNet-RS ablation chain: each config adds exactly one improvement and the last one is rs3d_50, the reference
recipe; the RandAugment variant branches off the end of the chain."""
import glob
import os

import yaml
from conftest import REPO_ROOT

from rs3d.config import load_config

ROOT = REPO_ROOT
EXPECTED_CHANGES = [
    {"SOLVER.MAX_EPOCH"},
    {"SOLVER.EMA_DECAY"},
    {"SOLVER.LABEL_SMOOTHING"},
    {"MODEL.RESNET3D.DROP_PATH_RATE"},
    {"MODEL.DROPOUT_RATE"},
    {"SOLVER.WEIGHT_DECAY"},
    {"MODEL.RESNET3D.SE_RATIO"},
    {"MODEL.RESNET3D.STEM_TYPE"},
]


def flat(cfg, prefix=""):
    out = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_flat(path):
    return flat(yaml.safe_load(load_config(os.path.join(ROOT, path)).dump()))


def test_each_step_adds_one_improvement_and_ends_at_rs3d_50():
    paths = sorted(glob.glob(os.path.join(ROOT, "configs/kinetics400/ablation/*.yaml")))
    assert len(paths) == len(EXPECTED_CHANGES) + 1
    configs = [load_flat(p) for p in paths]
    for previous, current, expected in zip(configs, configs[1:], EXPECTED_CHANGES):
        changed = {k for k in current if current[k] != previous[k]}
        assert changed == expected
    assert configs[-1] == load_flat("configs/kinetics400/rs3d_50.yaml")
    baseline = configs[0]
    assert baseline["SOLVER.EMA_DECAY"] == 0 and baseline["SOLVER.WEIGHT_DECAY"] == 1e-4
    assert all(c["DATA.RANDAUGMENT_LAYERS"] == 0 for c in configs)  # the reference recipe has none


def test_randaugment_variants_add_only_randaugment():
    for depth in (50, 101, 152, 200, 270, 350, 420):
        reference = load_flat(f"configs/kinetics400/rs3d_{depth}.yaml")
        variant = load_flat(f"configs/kinetics400/variants/rs3d_{depth}_randaug.yaml")
        changed = {k for k in variant if variant[k] != reference[k]}
        assert changed <= {"DATA.RANDAUGMENT_POLICY", "DATA.RANDAUGMENT_LAYERS", "DATA.RANDAUGMENT_MAGNITUDE"}
        magnitude = 10 if depth == 50 else 15
        assert (variant["DATA.RANDAUGMENT_POLICY"], variant["DATA.RANDAUGMENT_LAYERS"],
                variant["DATA.RANDAUGMENT_MAGNITUDE"]) == ("tf", 2, magnitude)
    old = load_flat("configs/kinetics400/variants/rs3d_50_randaug_torchvision.yaml")
    assert (old["DATA.RANDAUGMENT_POLICY"], old["DATA.RANDAUGMENT_LAYERS"], old["DATA.RANDAUGMENT_MAGNITUDE"]) == (
        "torchvision", 2, 10)
