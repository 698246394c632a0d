"""The final multi-view test: metrics, per-video predictions with class names, confusion matrix."""
from __future__ import annotations

import json
import logging
import os

import torch
from fvcore.common.config import CfgNode
from torch import nn

from rs3d.data import ClipNormalizer, SkipTracker, build_loader
from rs3d.evaluation.evaluator import evaluate
from rs3d.evaluation.plots import plot_confusion
from rs3d.evaluation.progress import EvalProgress
from rs3d.evaluation.reports import write_confusion_matrix, write_predictions
from rs3d.utils.atomic import atomic_write_text
from rs3d.utils.distributed import DistInfo
from rs3d.utils.errors import UserInputError

logger = logging.getLogger("rs3d")


class NoVideoReadError(UserInputError):
    """Not one video of the test split could be read: the (empty) reports are written, the command exits 1."""

    exit_code = 1


def run_test(cfg: CfgNode, model: nn.Module, class_names: list[str], dist: DistInfo,
             amp_dtype: torch.dtype | None) -> dict:
    """TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views per video of TEST.SPLIT; writes reports on rank 0."""
    loader = build_loader(cfg, cfg.TEST.SPLIT, multi_view=True, rank=dist.rank, world_size=dist.world_size)
    normalizer = ClipNormalizer.from_config(cfg, dist.device, cfg.TRAIN.CHANNELS_LAST)
    skips = SkipTracker()
    progress = EvalProgress(f"test on {cfg.TEST.SPLIT}") if dist.is_main else None
    meter = evaluate(model, loader, normalizer, amp_dtype, cfg.TEST.VIEW_AGGREGATION, skips=skips, progress=progress)
    summary = meter.summary()
    summary["skipped_videos"] = skips.total_skips
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    if dist.is_main:
        records = loader.dataset.records
        ids = meter.video_ids  # None when no video was read
        paths = [] if ids is None else [records[int(i)].path for i in ids]
        out = cfg.OUTPUT_DIR
        write_predictions(os.path.join(out, f"predictions_{cfg.TEST.SPLIT}.csv"), paths, meter.scores,
                          meter.labels, class_names)
        confusion = meter.confusion_matrix(len(class_names))
        write_confusion_matrix(os.path.join(out, f"confusion_{cfg.TEST.SPLIT}.csv"), confusion, class_names)
        plot_confusion(confusion, class_names, os.path.join(out, f"confusion_{cfg.TEST.SPLIT}.png"),
                       f"{cfg.TEST.SPLIT}: {views} views per video, mean class accuracy "
                       f"{summary['mean_class_accuracy']:.1f}%")
        atomic_write_text(os.path.join(out, f"test_{cfg.TEST.SPLIT}.json"),
                          json.dumps({**summary, "views_per_video": views}, indent=1))
        logger.info("test on %s (%d views/video, %d videos, %d unreadable): top1 %.2f top5 %.2f "
                    "mean class acc %.2f; predictions and confusion matrix in %s", cfg.TEST.SPLIT, views,
                    summary["num_videos"], skips.total_skips, summary["top1"], summary["top5"],
                    summary["mean_class_accuracy"], out)
    if not summary["num_videos"]:  # as rs3d-predict with no readable video: reports written, exit status 1
        raise NoVideoReadError(f"test on {cfg.TEST.SPLIT}: none of the {len(loader.dataset.records)} videos could be "
                               f"read ({skips.total_skips} unreadable, named in the log); empty reports in "
                               f"{cfg.OUTPUT_DIR}")
    return summary
