"""What a finished training run folder says about itself, for comparisons: its config, accuracies, class names and
per-video correctness.

A run folder (rs3d-train's OUTPUT_DIR) holds ``config.yaml``, ``metrics.jsonl`` (single-view validation records,
``split`` "val"/"val_ema"; per-epoch "train_epoch" records whose ``step`` counts optimizer steps), and after the final multi-view test ``test_<split>.json``, ``predictions_<split>.csv``
(columns: video, label, label_name, pred, pred_name, prob, top5) and ``confusion_<split>.csv`` (class names on the
header), with ``<split>`` = TEST.SPLIT; ``model_final.pyth`` marks finished training.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field

import numpy as np
import yaml

from rs3d.evaluation.reports import last_by_split, read_metrics
from rs3d.utils import paths
from rs3d.utils.errors import UserInputError

# Accuracy columns of a run, in percent: single view from the last validation (EMA model when present), multi-view
# from the final test.
ACCURACY_KEYS = ["top-1 1-view", "top-5 1-view", "mean class acc 1-view",
                 "top-1 multi-view", "top-5 multi-view", "mean class acc multi-view"]


@dataclass
class RunResult:
    """One finished run: folder, seed, flattened config, accuracies, class names and per-video correctness."""

    run_dir: str
    seed: int
    config: dict
    accuracy: dict
    class_names: list[str]
    correct: dict[str, bool] = field(repr=False)  # video (relative to the data folder) -> multi-view top-1 right
    train_seconds: float | None = None
    train_steps: int | None = None  # optimizer steps in all: epochs x steps per epoch (the training split's size)


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested config mapping -> {"DATA.NUM_FRAMES": 8, ...}; lists become tuples so values compare and hash."""
    flat: dict = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = tuple(value) if isinstance(value, list) else value
    return flat


def read_config(run_dir: str) -> dict:
    """The run's ``config.yaml`` flattened (error naming the file when missing or unreadable)."""
    path = os.path.join(run_dir, "config.yaml")
    if not paths.isfile(path):
        raise UserInputError(f"{path}: missing; is {run_dir} an rs3d-train output folder?")
    try:
        tree = yaml.safe_load(paths.read_text(path))
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(tree, dict):
        raise UserInputError(f"{path}: not a config mapping")
    return flatten(tree)


def test_split(config: dict) -> str:
    """TEST.SPLIT of a flattened config (the suffix of the run's test reports)."""
    return str(config.get("TEST.SPLIT", "test"))


def is_finished(run_dir: str, split: str) -> bool:
    """True when training finished and the final multi-view test wrote its reports."""
    return all(paths.isfile(os.path.join(run_dir, name)) for name in
               ("model_final.pyth", f"test_{split}.json", f"predictions_{split}.csv"))


def last_records(run_dir: str) -> dict:
    """The last ``metrics.jsonl`` record of each split ("val", "val_ema", "train_epoch", ...)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    return last_by_split(read_metrics(path)) if paths.isfile(path) else {}


def single_view(last: dict) -> dict:
    """Top-1/5 and mean class accuracy of the last single-view validation (EMA model when it was validated)."""
    best = last.get("val_ema") or last.get("val") or {}
    return {"top-1 1-view": best.get("top1"), "top-5 1-view": best.get("top5"),
            "mean class acc 1-view": best.get("mean_class_accuracy")}


def train_seconds(run_dir: str, split: str) -> float | None:
    """Wall seconds of the run's last (re)start: from ``config.yaml`` being written to the final test's report."""
    config, test = os.path.join(run_dir, "config.yaml"), os.path.join(run_dir, f"test_{split}.json")
    if not (paths.is_local(config) and os.path.isfile(config) and os.path.isfile(test)):
        return None
    return max(0.0, os.path.getmtime(test) - os.path.getmtime(config))


def video_key(path: str, data_dir: str) -> str:
    """A tested video's path relative to the run's data folder (so copies of the data elsewhere still match)."""
    if data_dir:
        rel = os.path.relpath(os.path.normpath(path), os.path.normpath(data_dir))
        if not rel.startswith(os.pardir):
            return rel
    return os.path.normpath(path)


def read_predictions(path: str, data_dir: str) -> dict[str, bool]:
    """Per-video multi-view top-1 correctness from a ``predictions_<split>.csv`` (labels needed)."""
    correct: dict[str, bool] = {}
    with paths.open_file(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if not row.get("label"):
                raise UserInputError(f"{path}: video {row.get('video')!r} has no label; accuracy needs labels")
            key = video_key(row["video"], data_dir)
            if key in correct:
                raise UserInputError(f"{path}: video {key!r} appears twice")
            correct[key] = int(row["label"]) == int(row["pred"])
    if not correct:
        raise UserInputError(f"{path}: no predictions")
    return correct


def read_class_names(path: str) -> list[str]:
    """Class names from the header of a ``confusion_<split>.csv`` (empty when the file is absent)."""
    if not paths.isfile(path):
        return []
    with paths.open_file(path, newline="") as handle:
        return next(csv.reader(handle), [])[1:]


def load_run(run_dir: str) -> RunResult:
    """Read a finished run folder; an unfinished one is an error that says how to finish it."""
    config = read_config(run_dir)
    split = test_split(config)
    test_path = os.path.join(run_dir, f"test_{split}.json")
    predictions = os.path.join(run_dir, f"predictions_{split}.csv")
    for path in (test_path, predictions):
        if not paths.isfile(path):
            raise UserInputError(f"{path}: missing; the run has not finished its final test (run rs3d-train "
                                 f"again with OUTPUT_DIR {run_dir} to resume it)")
    test = json.loads(paths.read_text(test_path))
    last = last_records(run_dir)
    accuracy = {**single_view(last), "top-1 multi-view": test.get("top1"), "top-5 multi-view": test.get("top5"),
                "mean class acc multi-view": test.get("mean_class_accuracy")}
    correct = read_predictions(predictions, str(config.get("DATA.PATH_TO_DATA_DIR", "")))
    steps = last.get("train_epoch", {}).get("step")
    return RunResult(run_dir, int(config.get("SEED", 0)), config, accuracy,
                     read_class_names(os.path.join(run_dir, f"confusion_{split}.csv")), correct,
                     train_seconds(run_dir, split), steps)


def correctness_matrix(runs: list[RunResult], videos: list[str]) -> np.ndarray:
    """0/1 array (runs, videos) of multi-view top-1 correctness in the given video order."""
    return np.asarray([[run.correct[v] for v in videos] for run in runs], dtype=np.float64)
