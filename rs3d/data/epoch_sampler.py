"""Epoch-tagged sampling, so every training clip's augmentation is a pure function of (seed, epoch, index).

Workers (persistent or not, any number) and a resumed run then draw exactly the same clips, crops and
RandAugment ops as an uninterrupted run: the sampler, which lives in the main process, hands each
index to the dataset together with the epoch. A run resumed from a mid-epoch checkpoint skips the samples the
epoch had already used (``set_epoch(epoch, skip)``), so it sees the rest of the same permutation in the same order.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
from torch.utils.data import DistributedSampler, RandomSampler, Sampler


class EpochSampler(Sampler):
    """Wraps a Random/DistributedSampler: ``set_epoch`` reshuffles deterministically; yields (epoch, index).

    ``skip`` leaves out the first samples of the epoch's order (this process's share), for the next iteration
    only: later passes over the same epoch (precise BN) and ``len`` see the whole epoch.
    """

    def __init__(self, sampler: Sampler, seed: int = 0):
        self.sampler, self.seed, self.epoch, self.skip = sampler, seed, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)
        elif isinstance(self.sampler, RandomSampler) and self.sampler.generator is not None:
            self.sampler.generator.manual_seed(self.seed * 100_003 + epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip, self.skip = self.skip, 0
        for index in itertools.islice(self.sampler, skip, None):
            yield self.epoch, int(index)

    def __len__(self) -> int:
        return len(self.sampler)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one training sample."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    offset = int(torch.randint(2**62, (1,), generator=g))
    return (offset + index * 2_654_435_761) % (2**63)
