"""Fault injection for testing crash recovery, switched on only by an environment variable (never by a config):

    RS3D_DEBUG_CRASH_AT_STEP=N   the process dies (``os._exit(1)``, no cleanup, like a segfault) right after
                                 optimizer step N, in the first attempt of a torchrun job only
                                 (TORCHELASTIC_RESTART_COUNT 0 or unset), so the restarted run gets past it.
    RS3D_DEBUG_CRASH_RANK=R      only rank R dies (default: every rank).
"""
from __future__ import annotations

import logging
import os

from rs3d.engine.hooks.base import HookBase

logger = logging.getLogger("rs3d")


class CrashAtStepHook(HookBase):
    """Dies hard after optimizer step ``step`` on rank ``rank`` (None: every rank)."""

    def __init__(self, step: int, rank: int | None = None):
        self.step, self.rank = step, rank

    @classmethod
    def from_environment(cls) -> CrashAtStepHook | None:
        step = os.environ.get("RS3D_DEBUG_CRASH_AT_STEP")
        if not step or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
            return None
        rank = os.environ.get("RS3D_DEBUG_CRASH_RANK")
        return cls(int(step), int(rank) if rank else None)

    def after_step(self) -> None:
        t = self.trainer
        if t.stepped and t.step == self.step and self.rank in (None, t.dist.rank):
            logger.warning("RS3D_DEBUG_CRASH_AT_STEP: rank %d dies after step %d", t.dist.rank, t.step)
            logging.shutdown()
            os._exit(1)
