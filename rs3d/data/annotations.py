"""Annotation files: PySlowFast ``path label`` CSVs, official Kinetics CSVs, class names, and folders of class
folders (``root/<class>/<video>``, no annotation file at all).

Every problem is reported as ``file:line: reason`` before training starts, so a bad line in a
240k-line CSV is found in seconds rather than hours into an epoch. Files and folders may be on any iopath
handler (``rs3d.utils.paths``).
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from dataclasses import dataclass

from rs3d.utils import paths
from rs3d.utils.class_folders import (
    VIDEO_EXTENSIONS,
    class_folder_names,
    find_classes,
    list_videos,
    split_folder,
)
from rs3d.utils.errors import UserInputError

logger = logging.getLogger(__name__)

KINETICS_HEADER = ("label", "youtube_id", "time_start", "time_end", "split")
DEFAULT_KINETICS_PATH_FORMAT = "{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
MISSING_FILE_POLICIES = ("error", "drop")


class AnnotationError(UserInputError, ValueError):
    """A malformed annotation file; the message names the file (and line)."""


@dataclass(frozen=True)
class VideoRecord:
    """One video of a split: absolute path, label index, and where it was declared."""

    path: str
    label: int
    source: str = ""


def read_slowfast_csv(csv_path: str, path_prefix: str = "", separator: str = " ",
                      num_classes: int | None = None) -> list[VideoRecord]:
    """Read ``path<sep>label`` lines (no header); paths are joined to ``path_prefix``."""
    records = []
    with _open_annotation(csv_path) as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            where = f"{csv_path}:{number}"
            parts = line.rsplit(separator, 1) if separator != " " else line.rsplit(None, 1)
            if len(parts) != 2:
                raise AnnotationError(f"{where}: expected 'path{separator}label', got {line[:80]!r}")
            label = _parse_label(parts[1], where, num_classes)
            records.append(VideoRecord(os.path.join(path_prefix, parts[0].strip()), label, where))
    if not records:
        raise AnnotationError(f"{csv_path}: no videos listed")
    return records


def read_kinetics_csv(csv_path: str, video_root: str, class_names: list[str],
                      path_format: str = DEFAULT_KINETICS_PATH_FORMAT) -> list[VideoRecord]:
    """Read an official Kinetics CSV (``label,youtube_id,time_start,time_end,split``) into records."""
    index = {name: i for i, name in enumerate(class_names)}
    records = []
    for number, row in _kinetics_rows(csv_path):
        where = f"{csv_path}:{number}"
        if row["label"] not in index:
            raise AnnotationError(f"{where}: unknown class {row['label']!r}")
        try:
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
        except ValueError:
            raise AnnotationError(f"{where}: time_start/time_end must be numbers") from None
        fields = dict(row, time_start=start, time_end=end, label_=row["label"].replace(" ", "_"))
        path = os.path.join(video_root, path_format.format(**fields))
        records.append(VideoRecord(path, index[row["label"]], where))
    if not records:
        raise AnnotationError(f"{csv_path}: no videos listed")
    return records


def kinetics_class_names(csv_path: str) -> list[str]:
    """Class names of an official Kinetics CSV: its distinct labels in sorted order (the standard indexing)."""
    return sorted({row["label"] for _, row in _kinetics_rows(csv_path)})


def is_kinetics_csv(csv_path: str) -> bool:
    """True when the first line is the official Kinetics header."""
    with _open_annotation(csv_path) as f:
        header = f.readline().strip().split(",")
    return tuple(h.strip() for h in header[:5]) == KINETICS_HEADER


def load_class_names(path: str) -> list[str]:
    """Class names from a JSON list, or a PySlowFast ``{"name": index}`` mapping."""
    try:
        data = json.loads(paths.read_text(path))
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read class names ({exc})") from None
    if isinstance(data, list) and all(isinstance(n, str) for n in data):
        return list(data)
    if isinstance(data, dict):
        names = sorted(data, key=lambda n: data[n])
        if sorted(data.values()) != list(range(len(data))):
            raise AnnotationError(f"{path}: class indices must be 0..{len(data) - 1} without gaps")
        return names
    raise AnnotationError(f"{path}: expected a JSON list of names or a {{name: index}} object")


def drop_or_fail_missing(records: list[VideoRecord], policy: str = "error", show: int = 5) -> list[VideoRecord]:
    """Check every file exists; report count and first names, then stop ("error") or drop them ("drop")."""
    if policy not in MISSING_FILE_POLICIES:
        raise ValueError(f"DATA.MISSING_FILES must be one of {MISSING_FILE_POLICIES}, got {policy!r}")
    missing = [r for r in records if not paths.isfile(r.path)]
    if not missing:
        return records
    names = ", ".join(f"{r.path} ({r.source})" for r in missing[:show])
    more = f" and {len(missing) - show} more" if len(missing) > show else ""
    message = f"{len(missing)} of {len(records)} videos are missing: {names}{more}"
    if policy == "error":
        raise AnnotationError(message + " (set DATA.MISSING_FILES drop to train without them)")
    logger.warning("%s; dropping them", message)
    missing_set = set(id(r) for r in missing)
    return [r for r in records if id(r) not in missing_set]


def _parse_label(text: str, where: str, num_classes: int | None) -> int:
    try:
        label = int(text)
    except ValueError:
        raise AnnotationError(f"{where}: label must be an integer, got {text!r}") from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        raise AnnotationError(f"{where}: label {label} out of range [0, {num_classes})")
    return label


def _open_annotation(csv_path: str, **kwargs):
    """Open an annotation file for reading; a missing one is an :class:`AnnotationError` naming it."""
    try:
        return paths.open_file(csv_path, "r", **kwargs)
    except OSError as exc:
        raise AnnotationError(f"{csv_path}: cannot read the annotation file ({exc.strerror or exc})") from None


def _kinetics_rows(csv_path: str):
    with _open_annotation(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or tuple(reader.fieldnames[:5]) != KINETICS_HEADER:
            raise AnnotationError(f"{csv_path}:1: expected header {','.join(KINETICS_HEADER)}")
        for number, row in enumerate(reader, start=2):
            if None in row or any(row.get(k) in (None, "") for k in ("label", "youtube_id")):
                raise AnnotationError(f"{csv_path}:{number}: malformed line")
            yield number, row


def read_class_folders(data_dir: str, split: str, val_fraction: float = 0.1) -> tuple[list[VideoRecord], list[str]]:
    """Records and class names of a class-folder dataset (``rs3d.utils.class_folders``): ``data_dir/<class>/...``
    or ``data_dir/{train,val,test}/<class>/...``; the class index is the folder's place in the sorted names.

    Without a folder for ``split``, val (and test) is ``val_fraction`` of each class's videos (at least one) and
    train the rest, chosen by a hash of the file's path inside its class folder: stable when videos are added
    and the same on every machine.
    """
    if not paths.isdir(data_dir):
        raise AnnotationError(f"{data_dir}: data folder not found")
    names = class_folder_names(data_dir)
    if not names:
        raise AnnotationError(f"{data_dir}: no class folders (expected {data_dir}/<class>/<video> or train/ and val/)")
    index = {name: i for i, name in enumerate(names)}
    folder = split_folder(data_dir, split)
    if folder is None and split == "test":
        folder = split_folder(data_dir, "val")
    records = []
    if folder is not None:  # an explicit split folder: everything in it
        for name in find_classes(folder):
            if name not in index:
                raise AnnotationError(f"{os.path.join(folder, name)}: class folder not among the training classes "
                                      f"({', '.join(names[:5])}{'...' if len(names) > 5 else ''})")
            class_dir = os.path.join(folder, name)
            records += [VideoRecord(os.path.join(class_dir, v), index[name], class_dir) for v in list_videos(class_dir)]
    else:
        if not 0.0 < val_fraction < 1.0:
            raise AnnotationError(f"{data_dir}: no {split}/ folder, so DATA.FOLDER_VAL_FRACTION must be in (0, 1) to "
                                  f"hold out {split} videos, got {val_fraction}")
        root = os.path.join(data_dir, "train") if paths.isdir(os.path.join(data_dir, "train")) else data_dir
        for name in names:
            class_dir = os.path.join(root, name)
            videos = sorted(list_videos(class_dir), key=lambda v: hashlib.md5(v.encode()).hexdigest())
            if not videos:
                raise AnnotationError(f"{class_dir}: class folder holds no videos ({', '.join(VIDEO_EXTENSIONS[:5])}...)")
            held_out = max(1, round(val_fraction * len(videos))) if len(videos) > 1 else 0
            chosen = videos[:held_out] if split != "train" else videos[held_out:]
            records += [VideoRecord(os.path.join(class_dir, v), index[name], class_dir) for v in sorted(chosen)]
    if not records:
        raise AnnotationError(f"{folder or data_dir}: no {split} videos found")
    return records, names
