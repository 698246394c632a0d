"""Hooks around every training step: the EMA update after each optimizer step, and per-rank seeding of the
random masks (dropout, stochastic depth) before each step under DDP."""
from __future__ import annotations

import torch

from rs3d.engine.hooks.base import HookBase


class EMAHook(HookBase):
    """Blend the weights into the EMA after every optimizer step."""

    def after_step(self) -> None:
        if self.trainer.stepped and self.trainer.ema is not None:
            self.trainer.ema.update(self.trainer.model)


class RankSeedHook(HookBase):
    """Different dropout and stochastic-depth masks on every rank, reproducibly.

    Every rank is seeded alike so that models start identical; left so, each rank would also draw the same
    masks on its own part of the batch. Before every step, each rank other than 0 reseeds torch from
    (seed, rank, epoch, iteration): its masks differ from every other rank's, and a run resumed mid-way (or
    restarted by torchrun) draws exactly the masks an uninterrupted run draws. Rank 0 keeps its own stream, which
    the checkpoint stores and resume restores.

    Args:
        seed: the run's seed (SEED).
        rank: this process's global rank.
    """

    def __init__(self, seed: int, rank: int):
        self.seed, self.rank = seed, rank

    def before_step(self) -> None:
        if self.rank > 0:
            t = self.trainer
            torch.manual_seed(hash((self.seed, self.rank, t.epoch, t.iter)) % (2**63))
