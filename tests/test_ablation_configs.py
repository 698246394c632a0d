"""The ResNet-RS ablation chain: each config adds exactly one improvement and the last one is rs3d_50."""
import glob
import os

import yaml

from rs3d.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPECTED_CHANGES = [
    {"SOLVER.MAX_EPOCH"},
    {"SOLVER.EMA_DECAY"},
    {"SOLVER.LABEL_SMOOTHING"},
    {"MODEL.RESNET3D.DROP_PATH_RATE"},
    {"DATA.RANDAUGMENT_LAYERS"},
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


def test_each_step_adds_one_improvement_and_ends_at_rs3d_50():
    paths = sorted(glob.glob(os.path.join(ROOT, "configs/kinetics400/ablation/*.yaml")))
    assert len(paths) == len(EXPECTED_CHANGES) + 1
    configs = [flat(yaml.safe_load(load_config(p).dump())) for p in paths]
    for previous, current, expected in zip(configs, configs[1:], EXPECTED_CHANGES):
        changed = {k for k in current if current[k] != previous[k]}
        assert changed == expected
    final = flat(yaml.safe_load(load_config(os.path.join(ROOT, "configs/kinetics400/rs3d_50.yaml")).dump()))
    assert configs[-1] == final
    baseline = configs[0]
    assert baseline["SOLVER.EMA_DECAY"] == 0 and baseline["SOLVER.WEIGHT_DECAY"] == 1e-4
