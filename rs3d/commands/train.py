"""Train (RS recipe) and then test a video model.

    rs3d-train --cfg configs/kinetics400/rs3d_50.yaml [KEY VALUE ...]
    torchrun --nproc_per_node 8 -m rs3d.commands.train --cfg configs/kinetics400/rs3d_50.yaml
    (tools/train_net.py is the same command)

OUTPUT_DIR receives config.yaml, log.txt, metrics.jsonl, tensorboard/, checkpoints/, model_final.pyth,
predictions and the confusion matrix. A run with checkpoints in OUTPUT_DIR continues where it stopped. One run
at a time holds OUTPUT_DIR (run.lock); a rerun with another model or data is refused, one with other recipe
values needs --allow-changes.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence

import torch
from fvcore.common.config import CfgNode

from rs3d.commands import base as cli
from rs3d.engine import Trainer
from rs3d.engine.monitor import setup_logging
from rs3d.engine.preflight import check_before_writing
from rs3d.engine.rerun import check_rerun, record_changes
from rs3d.engine.run_lock import RunLock
from rs3d.evaluation import format_summary_table, run_test
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_write_text
from rs3d.utils.distributed import DistInfo, cleanup, init_distributed
from rs3d.utils.errors import UserInputError


def on_main_rank(dist: DistInfo, check: Callable[[], object]) -> object:
    """Run ``check`` on rank 0 and give its refusal (a UserInputError) to every rank, so that no rank waits in a
    collective for a run that rank 0 refused; returns ``check``'s result on rank 0."""
    result, error = None, None
    if dist.is_main:
        try:
            result = check()
        except UserInputError as e:
            error = e
    if dist.distributed:
        box = [str(error) if error else None]
        torch.distributed.broadcast_object_list(box, 0)
        if box[0] and error is None:
            error = UserInputError(box[0])
    if error is not None:
        raise error
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.make_parser(__doc__, "rs3d-train")
    cli.add_config_arguments(parser)
    parser.add_argument("--allow-changes", action="store_true",
                        help="continue the run in OUTPUT_DIR with changed recipe values (e.g. more epochs); they "
                             "are recorded in OUTPUT_DIR/config_history.jsonl. Model and data changes always need "
                             "a new OUTPUT_DIR")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--allow-changes" in argv:  # also after the KEY VALUE pairs, where argparse would take it for one
        argv.remove("--allow-changes")
        argv.insert(0, "--allow-changes")
    args, cfg = cli.parse_config(parser, argv)
    dist = init_distributed(cfg.TRAIN.DEVICE, cfg.TRAIN.DIST_TIMEOUT_MINUTES)
    lock = RunLock(cfg.OUTPUT_DIR) if dist.is_main else None

    def claim_folder() -> dict:
        """The folder and weights files, the lock, then the rerun rule, before anything is written to OUTPUT_DIR."""
        check_before_writing(cfg)
        lock.acquire()
        try:
            return check_rerun(cfg, cfg.OUTPUT_DIR, args.allow_changes)
        except BaseException:
            lock.release()
            raise

    fresh = dist.is_main and paths.is_local(cfg.OUTPUT_DIR) and not os.path.lexists(cfg.OUTPUT_DIR)
    changes = on_main_rank(dist, claim_folder)
    try:
        return train_and_test(cfg, dist, changes or {})
    except UserInputError:
        if lock is not None:
            lock.release()
        if fresh:
            forget_failed_start(cfg.OUTPUT_DIR)
        raise
    finally:
        if lock is not None:
            lock.release()


def forget_failed_start(output_dir: str) -> None:
    """A first run that stopped on a bad input (data, weights) while it was being built, before config.yaml was
    written, leaves no folder behind: everything in it is this process's (the folder did not exist and the lock
    kept other runs out), none of it is a result, and the next try starts as a new run."""
    if not os.path.exists(os.path.join(output_dir, "config.yaml")):
        shutil.rmtree(output_dir, ignore_errors=True)


def train_and_test(cfg: CfgNode, dist: DistInfo, changes: dict) -> int:
    """The run itself, once the folder is this process's: train, then the multi-view test."""
    setup_logging(cfg.OUTPUT_DIR, dist.is_main)
    start = time.time()
    trainer = Trainer(cfg, dist)
    if dist.is_main:  # after the checks and the resume: the current values, and what changed from which step
        record_changes(cfg.OUTPUT_DIR, changes, trainer.step)
        atomic_write_text(os.path.join(cfg.OUTPUT_DIR, "config.yaml"), cfg.dump())
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
