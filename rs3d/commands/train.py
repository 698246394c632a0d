"""Train (RS recipe) and then test a video model.

    rs3d-train --cfg configs/kinetics400/rs3d_50.yaml [KEY VALUE ...]
    torchrun --nproc_per_node 8 -m rs3d.commands.train --cfg configs/kinetics400/rs3d_50.yaml
    (tools/train_net.py is the same command)

OUTPUT_DIR receives config.yaml, log.txt, metrics.jsonl, tensorboard/, checkpoints/, model_final.pyth,
predictions and the confusion matrix. A run with checkpoints in OUTPUT_DIR continues where it stopped.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence

from rs3d.commands import base as cli
from rs3d.engine import Trainer
from rs3d.engine.monitor import setup_logging
from rs3d.evaluation import format_summary_table, run_test
from rs3d.utils.atomic import atomic_write_text
from rs3d.utils.distributed import cleanup, init_distributed


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.make_parser(__doc__, "rs3d-train")
    cli.add_config_arguments(parser)
    args, cfg = cli.parse_config(parser, argv)
    dist = init_distributed(cfg.TRAIN.DEVICE, cfg.TRAIN.DIST_TIMEOUT_MINUTES)
    setup_logging(cfg.OUTPUT_DIR, dist.is_main)
    if dist.is_main:
        atomic_write_text(os.path.join(cfg.OUTPUT_DIR, "config.yaml"), cfg.dump())
    start = time.time()
    trainer = Trainer(cfg, dist)
    rows = []
    if cfg.TRAIN.ENABLE:
        last = trainer.train()
        rows.append({"stage": "train (last epoch)", **{k: last.get(k) for k in ("train_loss", "train_top1")},
                     "top1": last.get("val_ema_top1", last.get("val_top1")),
                     "top5": last.get("val_ema_top5", last.get("val_top5"))})
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


def console_main() -> None:
    """Entry point of the ``rs3d-train`` console command (same as tools/train_net.py)."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
