"""What every worker-throughput row shares: the clip geometry (:class:`BenchSetting`), wall and CPU time per row
(:class:`Timing`, :class:`Stopwatch`) and one-thread measurement, as inside a DataLoader worker."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from rs3d.data.clip_sampling import ClipSpec


@dataclass(frozen=True)
class BenchSetting:
    """Clip geometry shared by every pipeline (defaults: the Kinetics 32x2 recipe, 224 train / 256 test crops)."""

    num_frames: int = 32
    sampling_rate: int = 2
    train_crop: int = 224
    test_crop: int = 256
    test_clips: int = 10
    test_crops: int = 3
    randaug_layers: int = 2
    randaug_magnitude: float = 10
    randaug_policy: str = "torchvision"  # rs3d rows; pytorchvideo's row always runs torchvision's RandAugment

    @property
    def spec(self) -> ClipSpec:
        """The clip sampling of every pipeline."""
        return ClipSpec(self.num_frames, self.sampling_rate)


@dataclass
class Timing:
    """Wall and CPU time accumulated by one pipeline over its timed clips (test pipelines: views)."""

    key: str
    name: str
    videos: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    clips: int = 0

    def add(self, elapsed: tuple[float, float], clips: int = 1) -> None:
        """Count ``clips`` that took ``elapsed`` = (wall, CPU) seconds."""
        self.seconds += elapsed[0]
        self.cpu_seconds += elapsed[1]
        self.clips += clips

    @property
    def per_second(self) -> float:
        """Clips per wall-clock second."""
        return self.clips / self.seconds if self.seconds > 0 else float("nan")

    @property
    def ms_per_clip(self) -> float:
        """Wall-clock milliseconds per clip."""
        return 1e3 * self.seconds / self.clips if self.clips else float("nan")

    @property
    def cpu_ms_per_clip(self) -> float:
        """CPU milliseconds per clip (this process, all threads)."""
        return 1e3 * self.cpu_seconds / self.clips if self.clips else float("nan")


class Stopwatch:
    """Wall and CPU seconds (of this process, all its threads) since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> tuple[float, float]:
        """(wall, CPU) seconds."""
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one intra-op torch thread, as inside a DataLoader worker."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
