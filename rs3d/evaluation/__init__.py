"""Evaluation: classification metrics, multi-view ensembling, prediction and confusion-matrix outputs."""

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

__all__ = [
    "AverageMeter",
    "ClassificationMeter",
    "SmoothedValue",
    "aggregate_views",
    "format_summary_table",
    "forward_views",
    "merge_views",
    "prediction_rows",
    "split_views",
    "topk_correct",
    "write_confusion_matrix",
    "write_predictions",
]
