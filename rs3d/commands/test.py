"""Multi-view test of trained weights, without training.

    rs3d-test --cfg configs/toy/rs3d_tiny.yaml [TEST.CHECKPOINT_FILE path.pyth] [KEY VALUE ...]
    (tools/test_net.py is the same command)

Weights: TEST.CHECKPOINT_FILE, else OUTPUT_DIR/model_final.pyth, else the newest checkpoint in OUTPUT_DIR (EMA
weights when the checkpoint has them). Writes predictions and the confusion matrix to OUTPUT_DIR.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from fvcore.common.config import CfgNode

from rs3d.checkpoint import CheckpointError, CheckpointManager, load_weights
from rs3d.commands import base as cli
from rs3d.data import load_class_names_for
from rs3d.engine.monitor import setup_logging, sync_log_files
from rs3d.evaluation import format_summary_table, run_test
from rs3d.models import build_model
from rs3d.utils import paths
from rs3d.utils.distributed import cleanup, init_distributed
from rs3d.utils.precision import autocast_dtype
from rs3d.utils.runtime import seed_everything
from rs3d.utils.writable import check_output_folder


def find_weights(cfg: CfgNode) -> str:
    """TEST.CHECKPOINT_FILE, else the run's exported model, else its newest checkpoint."""
    if cfg.TEST.CHECKPOINT_FILE:
        return cfg.TEST.CHECKPOINT_FILE
    final = os.path.join(cfg.OUTPUT_DIR, "model_final.pyth")
    if paths.isfile(final):
        return final
    latest = CheckpointManager(os.path.join(cfg.OUTPUT_DIR, "checkpoints")).latest()
    if latest is None:
        raise CheckpointError(f"{cfg.OUTPUT_DIR}: no model_final.pyth or checkpoint; set TEST.CHECKPOINT_FILE")
    return latest


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.make_parser(__doc__, "rs3d-test")
    cli.add_config_arguments(parser)
    args, cfg = cli.parse_config(parser, argv)
    check_output_folder(cfg.OUTPUT_DIR, "OUTPUT_DIR")  # the reports go there: know before the whole test runs
    dist = init_distributed(cfg.TRAIN.DEVICE, cfg.TRAIN.DIST_TIMEOUT_MINUTES)
    setup_logging(cfg.OUTPUT_DIR, dist.is_main)
    seed_everything(cfg.SEED)
    path = find_weights(cfg)
    model = build_model(cfg, init=False)  # the trained weights replace any MODEL.INIT start: do not fetch it
    load_weights(model, path)
    model = model.to(dist.device)
    if cfg.TRAIN.CHANNELS_LAST:  # the normaliser feeds channels-last clips; the weights must match that layout
        model = model.to(memory_format=torch.channels_last_3d)
    summary = run_test(cfg, model, load_class_names_for(cfg), dist,
                       autocast_dtype(cfg.TRAIN.MIXED_PRECISION, dist.device))
    if dist.is_main:
        row = {"weights": os.path.basename(path), "split": cfg.TEST.SPLIT, **summary}
        print(format_summary_table([row], ["weights", "split", "num_videos", "top1", "top5",
                                           "mean_class_accuracy", "skipped_videos"]))
    sync_log_files()
    cleanup()
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-test`` console command (same as tools/test_net.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
