#!/usr/bin/env python
"""Multi-view test of trained weights, without training.

    python tools/test_net.py --cfg configs/toy/rs3d_tiny.yaml [TEST.CHECKPOINT_FILE path.pyth] [KEY VALUE ...]

Weights: TEST.CHECKPOINT_FILE, else OUTPUT_DIR/model_final.pyth, else the newest checkpoint in OUTPUT_DIR (EMA
weights when the checkpoint has them). Writes predictions and the confusion matrix to OUTPUT_DIR.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rs3d.config import load_config  # noqa: E402
from rs3d.engine import CheckpointError, CheckpointManager, init_distributed, run_test  # noqa: E402
from rs3d.engine.distributed import cleanup  # noqa: E402
from rs3d.engine.monitor import setup_logging  # noqa: E402
from rs3d.engine.setup import autocast_dtype, load_weights, seed_everything  # noqa: E402
from rs3d.data import load_class_names_for  # noqa: E402
from rs3d.evaluation import format_summary_table  # noqa: E402
from rs3d.models import build_model  # noqa: E402
from rs3d.utils import cli  # noqa: E402


def find_weights(cfg) -> str:
    """TEST.CHECKPOINT_FILE, else the run's exported model, else its newest checkpoint."""
    if cfg.TEST.CHECKPOINT_FILE:
        return cfg.TEST.CHECKPOINT_FILE
    final = os.path.join(cfg.OUTPUT_DIR, "model_final.pyth")
    if os.path.isfile(final):
        return final
    latest = CheckpointManager(os.path.join(cfg.OUTPUT_DIR, "checkpoints")).latest()
    if latest is None:
        raise CheckpointError(f"{cfg.OUTPUT_DIR}: no model_final.pyth or checkpoint; set TEST.CHECKPOINT_FILE")
    return latest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="config file")
    cli.add_opts_argument(parser)
    args = parser.parse_args()
    cfg = load_config(args.cfg, args.opts)
    dist = init_distributed(cfg.TRAIN.DEVICE)
    setup_logging(cfg.OUTPUT_DIR, dist.is_main)
    seed_everything(cfg.SEED)
    path = find_weights(cfg)
    model = build_model(cfg)
    load_weights(model, path)
    model = model.to(dist.device)
    summary = run_test(cfg, model, load_class_names_for(cfg), dist, autocast_dtype(cfg.TRAIN.MIXED_PRECISION,
                                                                                     dist.device))
    if dist.is_main:
        row = {"weights": os.path.basename(path), "split": cfg.TEST.SPLIT, **summary}
        print(format_summary_table([row], ["weights", "split", "num_videos", "top1", "top5",
                                           "mean_class_accuracy", "skipped_videos"]))
    cleanup()
    return 0


if __name__ == "__main__":
    cli.run(main)
