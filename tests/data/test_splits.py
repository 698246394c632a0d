"""One split reader (rs3d.data.splits) for training and the data tools: an official Kinetics CSV's labels follow
DATA.CLASS_NAMES_FILE in both, and training's records are the tools' records."""
import json
import os

import pytest
from conftest import REPO_ROOT

from rs3d.config import ConfigError, load_config
from rs3d.data.annotations import AnnotationError
from rs3d.data.build import load_records
from rs3d.data.splits import read_class_names, read_split, split_options

HEADER = "label,youtube_id,time_start,time_end,split\n"


@pytest.fixture()
def kinetics(tmp_path):
    """An official Kinetics layout (no video files needed to read it): train/val CSVs, a classnames.json in
    alphabetical order and, elsewhere, a names file in another order."""
    rows = [("abseiling", "aaa", 0, 10), ("zumba", "bbb", 5, 15), ("juggling", "ccc", 1, 11)]
    for split in ("train", "val"):
        (tmp_path / f"{split}.csv").write_text(HEADER + "".join(f"{c},{y},{s},{e},{split}\n" for c, y, s, e in rows))
    (tmp_path / "classnames.json").write_text(json.dumps(["abseiling", "juggling", "zumba"]))
    names = tmp_path / "elsewhere" / "my_order.json"
    names.parent.mkdir()
    names.write_text(json.dumps(["zumba", "abseiling", "juggling"]))
    return tmp_path, str(names)


def config(data_dir, *extra):
    return load_config(None, ["DATA.PATH_TO_DATA_DIR", str(data_dir), "MODEL.NUM_CLASSES", "3",
                              "DATA.MISSING_FILES", "drop", *extra])


def test_the_tools_read_labels_from_data_class_names_file_as_training_does(kinetics):
    data_dir, names_file = kinetics
    cfg = config(data_dir, "DATA.CLASS_NAMES_FILE", names_file)
    records = read_split(str(data_dir), "val", **split_options(cfg))
    assert [r.label for r in records] == [1, 0, 2]  # abseiling, zumba, juggling in my_order.json's order
    assert read_class_names(str(data_dir), names_file) == (["zumba", "abseiling", "juggling"], names_file)
    default = read_split(str(data_dir), "val", **split_options(config(data_dir)))
    assert [r.label for r in default] == [0, 2, 1]  # classnames.json beside the CSVs, alphabetical
    assert [r.path for r in records] == [r.path for r in default] == [
        os.path.join(str(data_dir), p) for p in ("val/abseiling/aaa_000000_000010.mp4",
                                                  "val/zumba/bbb_000005_000015.mp4",
                                                  "val/juggling/ccc_000001_000011.mp4")]


def test_training_reads_the_split_the_tools_read(kinetics, tmp_path):
    data_dir, names_file = kinetics
    for split in ("train", "val"):
        os.makedirs(data_dir / split / "zumba", exist_ok=True)
        (data_dir / split / "zumba" / "bbb_000005_000015.mp4").write_bytes(b"\0")  # the only file present
    cfg = config(data_dir, "DATA.CLASS_NAMES_FILE", names_file)
    kept = load_records(cfg, "train")  # the others are missing: dropped (DATA.MISSING_FILES drop)
    assert [(r.path, r.label) for r in kept] == [(r.path, r.label) for r in read_split(
        str(data_dir), "train", **split_options(cfg)) if r.path.endswith("bbb_000005_000015.mp4")]
    assert kept[0].label == 0  # zumba is first in my_order.json
    with pytest.raises(ConfigError, match=r"MODEL.NUM_CLASSES: 2, but .*my_order.json lists 3 classes"):
        load_records(config(data_dir, "DATA.CLASS_NAMES_FILE", names_file, "MODEL.NUM_CLASSES", "2"), "train")


def test_a_missing_class_names_file_is_named(kinetics):
    data_dir, _ = kinetics
    missing = str(data_dir / "nope.json")
    with pytest.raises(AnnotationError, match=r"nope.json: class names file not found"):
        read_split(str(data_dir), "val", **split_options(config(data_dir, "DATA.CLASS_NAMES_FILE", missing)))


def test_check_data_honours_class_names_file(kinetics, capsys):
    from rs3d.commands import check_data

    data_dir, names_file = kinetics
    cfg = os.path.join(REPO_ROOT, "configs/toy/rs3d_tiny.yaml")
    out = data_dir / "val.clean.csv"
    code = check_data.main(["--cfg", cfg, "--split", "val", "--workers", "1", "--no-decode", "--out", str(out),
                            "DATA.PATH_TO_DATA_DIR", str(data_dir), "DATA.TOY_DATASET", "False",
                            "DATA.CLASS_NAMES_FILE", str(data_dir / "absent.json")])
    assert code == 2 and "absent.json: class names file not found" in capsys.readouterr().err
