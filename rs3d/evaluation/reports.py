"""Evaluation outputs: per-video predictions (CSV/JSON), confusion matrix CSV, Markdown summary tables, and the
reading of a run's metrics records."""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence

from torch import Tensor

from rs3d.utils import paths
from rs3d.utils.atomic import atomic_open
from rs3d.utils.tables import markdown_table

PREDICTION_COLUMNS = ("video", "label", "label_name", "pred", "pred_name", "prob")


def prediction_rows(video_paths: Sequence[str], scores: Tensor, labels: Tensor | None,
                    class_names: Sequence[str], topk: int = 5) -> list[dict]:
    """One dict per video: true and predicted class (index and name), top-1 probability, top-k list."""
    if len(video_paths) != len(scores) or (labels is not None and len(labels) != len(scores)):
        raise ValueError("video_paths, scores and labels must have one entry per video")
    probs, preds = scores.detach().float().cpu().topk(min(topk, scores.shape[1]), dim=1)
    rows = []
    for i, video in enumerate(video_paths):
        label = int(labels[i]) if labels is not None else None
        top = [(class_names[int(c)], round(float(p), 6)) for p, c in zip(probs[i], preds[i])]
        rows.append({"video": video, "label": label, "label_name": class_names[label] if label is not None else None,
                     "pred": int(preds[i, 0]), "pred_name": top[0][0], "prob": top[0][1], f"top{topk}": top})
    return rows


def write_predictions(path: str | os.PathLike, video_paths: Sequence[str], scores: Tensor, labels: Tensor | None,
                      class_names: Sequence[str], topk: int = 5) -> None:
    """Per-video predictions as CSV (top-k as ``name:prob;...``) or JSON (list of objects), by extension."""
    rows = prediction_rows(video_paths, scores, labels, class_names, topk)
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in (".csv", ".json"):
        raise ValueError(f"predictions go to .csv or .json, not {os.fspath(path)!r}")
    key = f"top{topk}"
    with atomic_open(path) as handle:
        if ext == ".json":
            for row in rows:
                row[key] = [{"name": name, "prob": prob} for name, prob in row[key]]
            json.dump(rows, handle, indent=1)
            handle.write("\n")
            return
        writer = csv.DictWriter(handle, fieldnames=[*PREDICTION_COLUMNS, key])
        writer.writeheader()
        for row in rows:
            row[key] = ";".join(f"{name}:{prob:.6f}" for name, prob in row[key])
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def write_confusion_matrix(path: str | os.PathLike, matrix: Tensor, class_names: Sequence[str]) -> None:
    """Confusion counts as CSV: rows true class, columns predicted class, class names on both headers."""
    if matrix.shape != (len(class_names), len(class_names)):
        raise ValueError(f"matrix {tuple(matrix.shape)} does not match {len(class_names)} class names")
    with atomic_open(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(["true\\pred", *class_names])
        for name, row in zip(class_names, matrix.tolist()):
            writer.writerow([name, *row])


def format_summary_table(rows: Sequence[dict], columns: Sequence[str], float_format: str = "{:.2f}") -> str:
    """Markdown table of ``columns`` from each row dict (missing keys blank, floats via ``float_format``)."""
    def cell(value: object) -> object:
        return float_format.format(value) if isinstance(value, float) else ("" if value is None else value)
    return markdown_table(columns, [[cell(row.get(c)) for c in columns] for row in rows])


def read_metrics(path: str) -> list[dict]:
    """The JSON records of a run's ``metrics.jsonl`` in order (a line cut off by a crash is skipped); the one reader
    of that file for pictures, model cards and comparisons."""
    records = []
    for line in paths.read_text(path).splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def last_by_split(records: Sequence[dict]) -> dict[str, dict]:
    """The last record of each split ("val", "val_ema", "train_epoch", ...)."""
    return {r.get("split"): r for r in records}

