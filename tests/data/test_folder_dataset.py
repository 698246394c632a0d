"""DATA.PATH_TO_DATA_DIR as a folder of class folders (ImageFolder's convention): class names from folder names,
train/val(/test) folders or a hashed hold-out, MODEL.NUM_CLASSES 0 taken from the data."""
import os

import pytest

from rs3d.config import ConfigError, load_config
from rs3d.data import load_class_names_for, load_records
from rs3d.data.annotations import AnnotationError, read_class_folders


def make_videos(root, classes, per_class, split=""):
    for name in classes:
        folder = os.path.join(root, split, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            open(os.path.join(folder, f"{name}_{i:03d}.mp4"), "wb").close()
        open(os.path.join(folder, "notes.txt"), "w").close()  # not a video: ignored


def cfg_for(root, *extra):
    return load_config("configs/toy/rs3d_tiny.yaml", ["DATA.PATH_TO_DATA_DIR", str(root), "DATA.TOY_DATASET",
                                                       "False", "MODEL.NUM_CLASSES", "0", *extra])


def test_flat_class_folders_hold_out_a_stable_fraction(tmp_path):
    make_videos(tmp_path, ["walk", "jump", "run"], 20)
    os.makedirs(tmp_path / ".cache")  # hidden folders are not classes
    cfg = cfg_for(tmp_path)
    assert cfg.MODEL.NUM_CLASSES == 3  # resolved when the config is loaded
    assert load_class_names_for(cfg) == ["jump", "run", "walk"]
    train, val, test = (load_records(cfg, s) for s in ("train", "val", "test"))
    assert len(train) == 54 and len(val) == 6 and val == test
    assert not {r.path for r in train} & {r.path for r in val}
    assert {r.label for r in val} == {0, 1, 2}
    assert all(os.path.basename(os.path.dirname(r.path)) == ["jump", "run", "walk"][r.label] for r in train)
    make_videos(tmp_path, ["walk"], 25)  # adding videos keeps the earlier hold-out choices mostly in place
    val_after = {r.path for r in load_records(cfg, "val")}
    assert len({r.path for r in val} & val_after) >= 4


def test_train_and_val_folders(tmp_path):
    make_videos(tmp_path, ["a", "b"], 4, "train")
    make_videos(tmp_path, ["a", "b"], 2, "val")
    nested = tmp_path / "train" / "b" / "day2"
    nested.mkdir()
    (nested / "clip.MKV").touch()
    cfg = cfg_for(tmp_path)
    assert cfg.MODEL.NUM_CLASSES == 2
    assert len(load_records(cfg, "train")) == 9 and len(load_records(cfg, "val")) == 4
    assert load_records(cfg, "test") == load_records(cfg, "val")  # no test/: the val folder
    make_videos(tmp_path, ["c"], 1, "val")
    with pytest.raises(AnnotationError, match="not among the training classes"):
        load_records(cfg, "val")


def test_mismatched_class_count_and_empty_folders_are_errors(tmp_path):
    make_videos(tmp_path, ["a", "b"], 3)
    with pytest.raises(ConfigError, match="has 2 class folders"):
        load_records(cfg_for(tmp_path, "MODEL.NUM_CLASSES", "5"), "train")
    (tmp_path / "c").mkdir()
    with pytest.raises(AnnotationError, match="holds no videos"):
        read_class_folders(str(tmp_path), "train")
    with pytest.raises(AnnotationError, match="FOLDER_VAL_FRACTION"):
        read_class_folders(str(tmp_path), "val", val_fraction=0.0)
    with pytest.raises(ConfigError, match="names no classes"):
        load_class_names_for(cfg_for(tmp_path / "missing"))


def test_csv_datasets_are_unchanged(tmp_path):
    (tmp_path / "train.csv").write_text("a.mp4 0\n")
    (tmp_path / "classnames.json").write_text('["x", "y", "z"]')
    (tmp_path / "videos").mkdir()  # a sub-folder does not make it a class-folder dataset when train.csv exists
    cfg = cfg_for(tmp_path, "DATA.MISSING_FILES", "drop")
    assert cfg.MODEL.NUM_CLASSES == 3  # from classnames.json
    assert load_class_names_for(cfg) == ["x", "y", "z"]
