"""Annotation files: PySlowFast ``path label`` CSVs, official Kinetics CSVs, class names, and folders of class
folders (``root/<class>/<video>``, no annotation file at all).

Every problem is reported as ``file:line: reason`` before training starts, so a bad line in a
240k-line CSV is found in seconds rather than hours into an epoch. Files and folders may be on any iopath
handler (``rs3d.utils.paths``).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import stat
import string
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
from rs3d.utils.text_files import read_utf8

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
    for number, line in enumerate(_read_annotation(csv_path).splitlines(), start=1):
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
        path = os.path.join(video_root, _format_path(path_format, fields, where))
        records.append(VideoRecord(path, index[row["label"]], where))
    if not records:
        raise AnnotationError(f"{csv_path}: no videos listed")
    return records


def kinetics_class_names(csv_path: str) -> list[str]:
    """Class names of an official Kinetics CSV: its distinct labels in sorted order (the standard indexing)."""
    return sorted({row["label"] for _, row in _kinetics_rows(csv_path)})


def is_kinetics_csv(csv_path: str) -> bool:
    """True when the first line is the official Kinetics header (a UTF-8 BOM before it allowed)."""
    with _open_annotation(csv_path, "rb") as f:
        header = f.readline().decode("utf-8-sig", errors="replace").strip().split(",")
    return tuple(h.strip() for h in header[:5]) == KINETICS_HEADER


def annotation_file_exists(path: str) -> bool:
    """Whether an annotation file is at ``path``: True for a regular file, False when nothing is there. A folder,
    FIFO, device or broken link at the path is refused rather than taken for "no file", which would switch a
    dataset to class-folder mode without a word (and reading a FIFO would block)."""
    if paths.isfile(path):
        return True
    if not paths.is_local(path) or not os.path.lexists(path):
        return False
    if os.path.isdir(path):
        kind = "a folder"
    elif not os.path.exists(path):
        kind = f"a link to {os.readlink(path)}, which does not exist"
    else:
        kind = "a FIFO" if stat.S_ISFIFO(os.stat(path).st_mode) else "a device or socket"
    raise AnnotationError(f"{path}: not a regular file ({kind}); give the annotation file, or remove it to read "
                          "the class folders")


def load_class_names(path: str) -> list[str]:
    """Class names from a JSON list, or a PySlowFast ``{"name": index}`` mapping (integer indices 0..N-1); every
    name once."""
    text = read_utf8(path, AnnotationError, "class names")
    try:
        data = json.loads(text, object_pairs_hook=_pairs_without_repeats)
    except (json.JSONDecodeError, _RepeatedName) as exc:
        raise AnnotationError(f"{path}: cannot read class names ({exc})") from None
    if isinstance(data, list) and all(isinstance(n, str) for n in data):
        _refuse_repeats(path, data)
        return list(data)
    if isinstance(data, dict):
        bad = [(n, i) for n, i in data.items() if not isinstance(i, int) or isinstance(i, bool)]
        if bad:
            raise AnnotationError(f"{path}: class indices must be integers, got {bad[0][0]!r}: {bad[0][1]!r}")
        if sorted(data.values()) != list(range(len(data))):
            raise AnnotationError(f"{path}: class indices must be 0..{len(data) - 1} without gaps or repeats")
        return sorted(data, key=lambda n: data[n])
    raise AnnotationError(f"{path}: expected a JSON list of names or a {{name: index}} object")


class _RepeatedName(ValueError):
    pass


def _pairs_without_repeats(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are all different (``json`` keeps the last of repeated keys without a word)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _RepeatedName(f"class name {key!r} appears twice")
        seen.add(key)
    return dict(pairs)


def _refuse_repeats(path: str, names: list[str]) -> None:
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            raise AnnotationError(f"{path}: class name {name!r} appears twice (entries {first[name]} and {i}); two "
                                  "classes of one name cannot be told apart")
        first[name] = i


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


def _open_annotation(csv_path: str, mode: str = "r"):
    """Open an annotation file for reading; a missing one is an :class:`AnnotationError` naming it."""
    try:
        return paths.open_file(csv_path, mode)
    except OSError as exc:
        raise AnnotationError(f"{csv_path}: cannot read the annotation file ({exc.strerror or exc})") from None


def _read_annotation(csv_path: str) -> str:
    """The whole annotation file as text (:func:`rs3d.utils.text_files.read_utf8`: UTF-8, BOM dropped)."""
    return read_utf8(csv_path, AnnotationError, "the annotation file")


def _format_path(path_format: str, fields: dict, where: str) -> str:
    """A Kinetics row's file name from the path format; a field the row does not have is named."""
    try:
        return path_format.format(**fields)
    except KeyError as exc:
        known = ", ".join(sorted(fields))
        raise AnnotationError(f"{where}: DATA.KINETICS_PATH_FORMAT {path_format!r}: unknown field {{{exc.args[0]}}} "
                              f"(the fields are {known})") from None
    except (ValueError, IndexError, TypeError) as exc:
        fields_used = [f for _, f, _, _ in string.Formatter().parse(path_format) if f is not None]
        raise AnnotationError(f"{where}: DATA.KINETICS_PATH_FORMAT {path_format!r} ({', '.join(fields_used)}): "
                              f"{exc}") from None


def _kinetics_rows(csv_path: str):
    """(line, row) of each record, ``line`` the one it starts on as counted by the reader itself (blank lines and
    quoted line breaks included): ``enumerate`` over a DictReader, which skips blank lines, put every record after
    one on the wrong line, so ``file:line`` errors and :func:`rs3d.data.splits.write_csv_subset` missed."""
    reader = csv.reader(io.StringIO(_read_annotation(csv_path), newline=""))
    header = next(reader, None)
    if header is None or tuple(header[:5]) != KINETICS_HEADER:
        raise AnnotationError(f"{csv_path}:1: expected header {','.join(KINETICS_HEADER)}")
    start = reader.line_num + 1
    for values in reader:
        number, start = start, reader.line_num + 1
        if not values:  # a blank line
            continue
        row = dict(zip(header, values))
        if len(values) > len(header) or len(values) < len(KINETICS_HEADER) or not row["label"] or not row["youtube_id"]:
            raise AnnotationError(f"{csv_path}:{number}: malformed line")
        yield number, row


def read_class_folders(data_dir: str, split: str, val_fraction: float = 0.1, class_names: list[str] | None = None,
                       names_file: str = "") -> tuple[list[VideoRecord], list[str]]:
    """Records and class names of a class-folder dataset (``rs3d.utils.class_folders``): ``data_dir/<class>/...``
    or ``data_dir/{train,val,test}/<class>/...``; the class index is the folder's place in ``class_names`` (read
    from ``names_file``, which must name every class folder and no other class) or else in the sorted names.

    Without a folder for ``split``, val (and test) is ``val_fraction`` of each class's videos (at least one) and
    train the rest, chosen by a hash of the file's path inside its class folder: stable when videos are added
    and the same on every machine. With ``train/`` but no ``val/``, train is ``train/`` less the held-out videos.
    """
    if not paths.isdir(data_dir):
        raise AnnotationError(f"{data_dir}: data folder not found")
    names = class_folder_names(data_dir)
    if not names:
        raise AnnotationError(f"{data_dir}: no class folders (expected {data_dir}/<class>/<video> or train/ and val/)")
    root = os.path.join(data_dir, "train") if paths.isdir(os.path.join(data_dir, "train")) else data_dir
    if class_names is not None:
        names = _names_file_order(names, list(class_names), names_file or data_dir, root)
    index = {name: i for i, name in enumerate(names)}
    folder = split_folder(data_dir, split)
    if folder is None and split == "test":
        folder = split_folder(data_dir, "val")
    records = []
    if folder is not None:  # an explicit split folder: everything in it
        for name in find_classes(folder):
            if name not in index and names_file and class_names is not None:
                raise AnnotationError(f"{names_file}: no class {name!r}, but {folder} has a class folder of that name")
            if name not in index:
                raise AnnotationError(f"{os.path.join(folder, name)}: class folder not among the training classes "
                                      f"({', '.join(names[:5])}{'...' if len(names) > 5 else ''})")
            class_dir = os.path.join(folder, name)
            records += [VideoRecord(os.path.join(class_dir, v), index[name], class_dir) for v in list_videos(class_dir)]
    else:
        if not 0.0 < val_fraction < 1.0:
            held = "val" if split == "train" else split
            raise AnnotationError(f"{data_dir}: no {held}/ folder, so DATA.FOLDER_VAL_FRACTION must be in (0, 1) to "
                                  f"hold out {held} videos, got {val_fraction}")
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


def _names_file_order(folders: list[str], class_names: list[str], names_file: str, root: str) -> list[str]:
    """``class_names`` when they name exactly the class folders under ``root``; otherwise the first class only one
    side has is an error naming the file (labels by the file's order, names by the folders' would silently differ)."""
    listed, found = set(class_names), set(folders)
    for name in folders:
        if name not in listed:
            raise AnnotationError(f"{names_file}: no class {name!r}, but {root} has a class folder of that name")
    for name in class_names:
        if name not in found:
            raise AnnotationError(f"{names_file}: class {name!r} has no class folder in {root}")
    return class_names
