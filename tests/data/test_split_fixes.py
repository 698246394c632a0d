"""Review findings on reading splits: a train/ folder without val/ leaves its held-out videos out of train, class
folders take their labels from a class names file, and an official Kinetics CSV's records keep their real line
numbers after a blank line (file:line errors and the subsets rs3d-check-data / rs3d-prepare-data write)."""
import json
import os
import shutil

import pytest
from conftest import moving_frames, write_h264

from rs3d.config import load_config
from rs3d.data.annotations import AnnotationError
from rs3d.data.build import load_class_names_for, load_records
from rs3d.data.splits import read_split, split_options, write_csv_subset


def make_folders(root, split, classes, per_class, video=None):
    for name in classes:
        folder = os.path.join(root, split, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            path = os.path.join(folder, f"{name}_{i:02d}.mp4")
            shutil.copy(video, path) if video else open(path, "wb").close()


def cfg_for(root, *extra):
    return load_config("configs/toy/rs3d_tiny.yaml", ["DATA.PATH_TO_DATA_DIR", str(root), "DATA.TOY_DATASET",
                                                       "False", "MODEL.NUM_CLASSES", "0", *extra])


def relative(records, root):
    return sorted(os.path.relpath(r.path, root) for r in records)


def test_train_folder_without_val_leaves_the_held_out_videos_out_of_train(tmp_path, capsys):
    from rs3d.commands import check_data

    video = str(tmp_path / "one.mp4")
    write_h264(video, moving_frames(8))
    split_root, flat = tmp_path / "split", tmp_path / "flat"
    make_folders(split_root, "train", ["cat", "dog"], 10, video)
    make_folders(split_root, "test", ["cat", "dog"], 2, video)
    make_folders(flat, "", ["cat", "dog"], 10)
    cfg = cfg_for(split_root, "DATA.FOLDER_VAL_FRACTION", "0.2")
    train, val, test = (load_records(cfg, s) for s in ("train", "val", "test"))
    assert len(train) == 16 and len(val) == 4 and len(test) == 4
    assert not {r.path for r in train} & {r.path for r in val}  # no validation video is trained on
    assert sorted(relative(train + val, split_root / "train")) == [f"{c}/{c}_{i:02d}.mp4" for c in ("cat", "dog")
                                                                    for i in range(10)]  # together all of train/
    # the same hold-out as without split folders
    assert relative(val, split_root / "train") == relative(read_split(str(flat), "val", val_fraction=0.2), flat)
    assert relative(train, split_root / "train") == relative(read_split(str(flat), "train", val_fraction=0.2), flat)
    assert all(r.path.startswith(str(split_root / "test")) for r in test)
    for split, records in (("train", train), ("val", val), ("test", test)):  # the tools read the same splits
        assert read_split(str(split_root), split, **split_options(cfg)) == records
    assert check_data.main(["--cfg", "configs/toy/rs3d_tiny.yaml", "--split", "train", "--workers", "1",
                            "--num-frames", "4", "DATA.PATH_TO_DATA_DIR", str(split_root), "DATA.TOY_DATASET",
                            "False", "DATA.FOLDER_VAL_FRACTION", "0.2"]) == 0
    clean = (split_root / "train.clean.csv").read_text().splitlines()
    assert sorted(line.split()[0] for line in clean) == relative(train, split_root)
    capsys.readouterr()


@pytest.mark.parametrize("names_at", ["config", "data_dir"])
def test_class_folders_take_their_labels_from_the_class_names_file(tmp_path, names_at):
    data = tmp_path / "data"
    make_folders(data, "", ["cat", "dog", "eel"], 4)
    names_file = data / "classnames.json" if names_at == "data_dir" else tmp_path / "names.json"
    names_file.write_text(json.dumps(["dog", "eel", "cat"]))
    extra = ["DATA.CLASS_NAMES_FILE", str(names_file)] if names_at == "config" else []
    cfg = cfg_for(data, *extra)
    names = load_class_names_for(cfg)
    assert names == ["dog", "eel", "cat"]
    for split in ("train", "val"):
        records = load_records(cfg, split)
        assert {os.path.basename(os.path.dirname(r.path)): r.label for r in records} == {"dog": 0, "eel": 1, "cat": 2}
        assert all(names[r.label] == os.path.basename(os.path.dirname(r.path)) for r in records)
        assert read_split(str(data), split, **split_options(cfg)) == records  # the tools' labels too


def test_a_class_names_file_that_disagrees_with_the_folders_is_named(tmp_path, capsys):
    from rs3d.commands import check_data

    make_folders(tmp_path, "train", ["cat", "dog"], 3)
    make_folders(tmp_path, "val", ["cat", "dog"], 1)
    names_file = tmp_path / "classnames.json"
    names_file.write_text(json.dumps(["dog", "cat", "cow"]))
    with pytest.raises(AnnotationError, match=rf"^{names_file}: class 'cow' has no class folder in .*train$"):
        load_records(cfg_for(tmp_path, "MODEL.NUM_CLASSES", "3"), "train")
    names_file.write_text(json.dumps(["dog"]))
    with pytest.raises(AnnotationError, match=rf"^{names_file}: no class 'cat', but .*train has a class folder"):
        read_split(str(tmp_path), "val")
    names_file.write_text(json.dumps(["dog", "cat"]))
    make_folders(tmp_path, "val", ["bird"], 1)  # a class of the val/ folder only
    with pytest.raises(AnnotationError, match=rf"^{names_file}: no class 'bird', but .*val has a class folder"):
        read_split(str(tmp_path), "val")
    names_file.write_text(json.dumps(["dog"]))
    assert check_data.main([str(tmp_path), "--split", "train", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(names_file) in err and "'cat'" in err


def test_kinetics_records_keep_their_line_numbers_after_blank_lines(tmp_path):
    lines = ["label,youtube_id,time_start,time_end,split", "abseiling,AAA,0,10,train", "", "abseiling,BBB,0,10,train",
             "", "", "zumba,CCC,0,10,train", "zumba,DDD,0,10,train"]
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("\r\n".join(lines) + "\r\n")
    records = read_split(str(tmp_path), "train")
    assert [(os.path.basename(r.path)[:3], r.source) for r in records] == [
        (y, f"{csv_path}:{n}") for y, n in (("AAA", 2), ("BBB", 4), ("CCC", 7), ("DDD", 8))]
    out = tmp_path / "train.clean.csv"
    assert write_csv_subset(str(csv_path), [r for r in records if "BBB" in r.path or "DDD" in r.path], str(out)) == 2
    assert out.read_text().splitlines() == [lines[0], "abseiling,BBB,0,10,train", "zumba,DDD,0,10,train"]
    csv_path.write_text("\n".join(lines[:5] + ["zumba,EEE"] + lines[5:]) + "\n")
    with pytest.raises(AnnotationError, match=rf"^{csv_path}:6: malformed line$"):
        read_split(str(tmp_path), "train")


def test_prepare_data_keeps_the_class_names_file_order_of_class_folders(tmp_path, capsys):
    from rs3d.commands import prepare_data

    video, src, dst = str(tmp_path / "one.mp4"), tmp_path / "src", tmp_path / "dst"
    write_h264(video, moving_frames(8))
    make_folders(src, "", ["cat", "dog"], 2, video)
    (src / "classnames.json").write_text(json.dumps(["dog", "cat"]))
    assert prepare_data.main([str(src), str(dst), "--short-side", "32", "--workers", "1"]) == 0
    capsys.readouterr()
    names = json.loads((dst / "classnames.json").read_text())
    records = read_split(str(dst), "train") + read_split(str(dst), "val")
    assert {names[r.label] for r in records} == {"cat", "dog"}
    assert all(names[r.label] == os.path.basename(r.path).split("_")[0] for r in records)
