"""Evaluation: metrics, multi-view ensembling, the evaluation loop, the final test and its report files."""

from rs3d.evaluation.evaluator import evaluate
from rs3d.evaluation.metrics import (
    AverageMeter,
    ClassificationMeter,
    SmoothedValue,
    topk_correct,
)
from rs3d.evaluation.multiview import (
    aggregate_views,
    forward_views,
    merge_views,
    split_views,
)
from rs3d.evaluation.reports import (
    format_summary_table,
    prediction_rows,
    write_confusion_matrix,
    write_predictions,
)
from rs3d.evaluation.testing import run_test

__all__ = [
    "AverageMeter",
    "ClassificationMeter",
    "SmoothedValue",
    "aggregate_views",
    "evaluate",
    "format_summary_table",
    "forward_views",
    "merge_views",
    "prediction_rows",
    "run_test",
    "split_views",
    "topk_correct",
    "write_confusion_matrix",
    "write_predictions",
]
