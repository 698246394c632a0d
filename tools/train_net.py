#!/usr/bin/env python
"""Train (RS recipe) and then test a video model.

    python tools/train_net.py --cfg configs/kinetics400/rs3d_50.yaml [KEY VALUE ...]
    torchrun --nproc_per_node 8 tools/train_net.py --cfg configs/kinetics400/rs3d_50.yaml

OUTPUT_DIR receives config.yaml, log.txt, metrics.jsonl, tensorboard/, checkpoints/, model_final.pyth,
predictions and the confusion matrix. A run with checkpoints in OUTPUT_DIR continues where it stopped.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rs3d.config import load_config  # noqa: E402
from rs3d.engine import Trainer, init_distributed, run_test  # noqa: E402
from rs3d.engine.distributed import cleanup  # noqa: E402
from rs3d.engine.monitor import setup_logging  # noqa: E402
from rs3d.evaluation import format_summary_table  # noqa: E402
from rs3d.utils import cli  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="config file")
    cli.add_opts_argument(parser)
    args = parser.parse_args()
    cfg = load_config(args.cfg, args.opts)
    dist = init_distributed(cfg.TRAIN.DEVICE)
    setup_logging(cfg.OUTPUT_DIR, dist.is_main)
    if dist.is_main:
        with open(os.path.join(cfg.OUTPUT_DIR, "config.yaml"), "w") as f:
            f.write(cfg.dump())
    start = time.time()
    trainer = Trainer(cfg, dist)
    rows = []
    if cfg.TRAIN.ENABLE:
        last = trainer.train()
        rows.append({"stage": "train (last epoch)", **{k: last.get(k) for k in ("train_loss", "train_top1")},
                     "top1": last.get("val_ema_top1", last.get("val_top1")), "top5": last.get("val_ema_top5",
                                                                                            last.get("val_top5"))})
    if cfg.TEST.ENABLE:
        test = run_test(cfg, trainer.export_model(), trainer.class_names, dist, trainer.amp_dtype)
        rows.append({"stage": f"test ({cfg.TEST.SPLIT}, multi-view)", "top1": test["top1"], "top5": test["top5"],
                     "mean_class_accuracy": test["mean_class_accuracy"]})
    if dist.is_main:
        print(format_summary_table(rows, ["stage", "train_loss", "train_top1", "top1", "top5",
                                          "mean_class_accuracy"]))
        print(f"total time {time.time() - start:.0f}s; outputs in {cfg.OUTPUT_DIR}")
    trainer.monitor.close()
    cleanup()
    return 0


if __name__ == "__main__":
    cli.run(main)
