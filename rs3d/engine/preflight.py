"""What ``rs3d-train`` checks before it writes anything into OUTPUT_DIR: that the folder can be written, and that
the weights files it will read (MODEL.INIT.FROM, TRAIN.CHECKPOINT_FILE, the checkpoints it may resume from) are
checkpoints at all. A bad input then stops with one line and leaves the folder as it was: no log.txt appended,
no run.lock, no folder created."""
from __future__ import annotations

import os

from fvcore.common.config import CfgNode

from rs3d.checkpoint.io import check_kind
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.utils import paths
from rs3d.utils.writable import check_output_folder


def check_before_writing(cfg: CfgNode) -> None:
    """Raise a one-line :class:`~rs3d.utils.errors.UserInputError` for an OUTPUT_DIR that cannot be written or a
    weights file that is text, a web page or a Git LFS pointer (:mod:`rs3d.checkpoint.kinds`)."""
    check_output_folder(cfg.OUTPUT_DIR, "OUTPUT_DIR")
    for path in (cfg.MODEL.INIT.FROM, cfg.TRAIN.CHECKPOINT_FILE):
        if path and paths.isfile(path):  # "timm:...", pretrained folders and hub names have their own loaders
            check_kind(path)
    if cfg.TRAIN.ENABLE and cfg.TRAIN.AUTO_RESUME:
        CheckpointManager(os.path.join(cfg.OUTPUT_DIR, "checkpoints")).check_foreign()
