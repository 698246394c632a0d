"""Reading and writing a split's list of videos, the one reader shared by training (:mod:`rs3d.data.build`) and the
data tools: ``DATA_DIR/<split>.csv`` (PySlowFast ``path label`` or official Kinetics, whose labels are class names
from DATA.CLASS_NAMES_FILE, ``DATA_DIR/classnames.json`` or the train CSV), or a folder of class folders."""
from __future__ import annotations

import os
from collections.abc import Sequence

from rs3d.data.annotations import (
    AnnotationError,
    VideoRecord,
    annotation_file_exists,
    is_kinetics_csv,
    kinetics_class_names,
    load_class_names,
    read_class_folders,
    read_kinetics_csv,
    read_slowfast_csv,
)
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_open
from rs3d.utils.class_folders import is_class_folder_dataset


def read_split(data_dir: str, split: str, path_format: str | None = None, val_fraction: float = 0.1,
               path_prefix: str = "", separator: str = " ", class_names_file: str = "",
               class_names: Sequence[str] | None = None, num_classes: int | None = None) -> list[VideoRecord]:
    """Records of ``data_dir/<split>.csv``, PySlowFast ``path label`` (labels below ``num_classes`` when given) or
    official Kinetics (labels by ``class_names``, default :func:`read_class_names`), paths under ``path_prefix``
    (default: data_dir); without the CSV, of a class-folder dataset's split (``val_fraction`` held out when there is
    no split folder; labels by the class names file when there is one). :func:`split_options` gives a config's
    values, so every reader reads a split as training does.
    """
    csv_path = os.path.join(data_dir, f"{split}.csv")
    exists = annotation_file_exists(csv_path)  # a folder or FIFO there is refused, not read as class folders
    if not exists and is_class_folder_dataset(data_dir):  # labels by the class names file when there is one
        default = os.path.join(data_dir, "classnames.json")
        names_file = class_names_file or (default if paths.isfile(default) else "")
        if class_names is None and names_file:
            class_names = read_class_names(data_dir, class_names_file, val_fraction)[0]
        names = None if class_names is None else list(class_names)
        return read_class_folders(data_dir, split, val_fraction, names, names_file)[0]
    if not exists:
        raise AnnotationError(f"{csv_path}: annotation file not found")
    if not is_kinetics_csv(csv_path):
        return read_slowfast_csv(csv_path, path_prefix or data_dir, separator, num_classes)
    if class_names is None:
        class_names = read_class_names(data_dir, class_names_file, val_fraction, fallback_csv=csv_path)[0]
    kwargs = {"path_format": path_format} if path_format else {}
    return read_kinetics_csv(csv_path, path_prefix or data_dir, list(class_names), **kwargs)


def names_classes(data_dir: str, split: str) -> bool:
    """Whether ``split``'s labels are class names (an official Kinetics CSV or class folders), not indices."""
    csv_path = os.path.join(data_dir, f"{split}.csv")
    if annotation_file_exists(csv_path):
        return is_kinetics_csv(csv_path)
    return is_class_folder_dataset(data_dir)


def split_options(cfg) -> dict:
    """:func:`read_split`'s keyword arguments from a config, so the data tools read a split as training does:
    DATA.KINETICS_PATH_FORMAT, DATA.FOLDER_VAL_FRACTION, DATA.PATH_PREFIX, DATA.PATH_LABEL_SEPARATOR,
    DATA.CLASS_NAMES_FILE."""
    d = cfg.DATA
    return {"path_format": d.KINETICS_PATH_FORMAT, "val_fraction": d.FOLDER_VAL_FRACTION,
            "path_prefix": d.PATH_PREFIX, "separator": d.PATH_LABEL_SEPARATOR, "class_names_file": d.CLASS_NAMES_FILE}


def read_class_names(data_dir: str, class_names_file: str = "", val_fraction: float = 0.1,
                     fallback_csv: str = "") -> tuple[list[str], str]:
    """Class names as training reads them, and the file or folder that named them: ``class_names_file``
    (DATA.CLASS_NAMES_FILE), else data_dir/classnames.json, else (a folder of class folders) the sorted folder
    names, else the official train CSV's labels (``fallback_csv``'s when there is no Kinetics train.csv)."""
    names_file = class_names_file or os.path.join(data_dir, "classnames.json")
    if not paths.isfile(names_file) and not class_names_file and is_class_folder_dataset(data_dir):
        return read_class_folders(data_dir, "train", val_fraction)[1], data_dir
    if paths.isfile(names_file):
        return load_class_names(names_file), names_file
    train_csv = os.path.join(data_dir, "train.csv")
    if not class_names_file and paths.isfile(train_csv) and is_kinetics_csv(train_csv):
        return kinetics_class_names(train_csv), train_csv
    if not class_names_file and fallback_csv and paths.isfile(fallback_csv) and is_kinetics_csv(fallback_csv):
        return kinetics_class_names(fallback_csv), fallback_csv
    raise AnnotationError(f"{names_file}: class names file not found")


def write_csv_subset(csv_path: str, records: Sequence[VideoRecord], out_path: str) -> int:
    """Copy the header (if any) and the lines of ``csv_path`` that declared ``records``; returns lines kept.

    Lines are copied verbatim, so the subset keeps the input's format, separators and relative paths. Without
    a CSV (a class-folder dataset) the subset is written as PySlowFast ``path label`` lines, paths relative to
    the folder of ``out_path``.
    """
    if not paths.isfile(csv_path):
        return write_slowfast_csv(records, out_path)
    keep = {int(r.source.rsplit(":", 1)[1]) for r in records}
    header = 1 if is_kinetics_csv(csv_path) else 0
    with paths.open_file(csv_path) as f:
        lines = [line if line.endswith("\n") else line + "\n"
                 for number, line in enumerate(f, start=1) if number <= header or number in keep]
    with atomic_open(out_path) as f:
        f.writelines(lines)
    return len(lines) - header


def write_slowfast_csv(records: Sequence[VideoRecord], out_path: str) -> int:
    """Write ``records`` as PySlowFast ``path label`` lines, paths relative to the folder of ``out_path``; returns
    the lines written."""
    base = paths.parent(out_path)
    with atomic_open(out_path) as f:
        f.writelines(f"{paths.relative(paths.absolute(r.path), base)} {r.label}\n" for r in records)
    return len(records)
