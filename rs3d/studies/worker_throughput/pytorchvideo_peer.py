"""Row (3) of the worker-throughput table: pytorchvideo's LabeledVideoDataset (decord decoder) with torchvision v2
augmentation, in a spawned process stepped clip by clip from the parent, so it takes turns with the rs3d rows."""
from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import random
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import torch

from rs3d.studies.worker_throughput.timing import BenchSetting, Stopwatch, Timing


def _pytorchvideo_transform(setting: BenchSetting) -> Callable[[dict], dict]:
    """pytorchvideo-style transform with torchvision v2: uniform temporal subsample, RRC, flip, RandAugment."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    augment = v2.Compose([v2.RandomResizedCrop(setting.train_crop, scale=(0.08, 1.0), ratio=(0.5, 2.0),
                                               antialias=True),
                          v2.RandomHorizontalFlip(0.5),
                          v2.RandAugment(setting.randaug_layers, int(setting.randaug_magnitude))])

    def transform(sample: dict) -> dict:
        video = sample["video"]  # (C, T, H, W) float32 in [0, 255], every frame of the clip's time window
        index = torch.linspace(0, video.shape[1] - 1, setting.num_frames).clamp(0, video.shape[1] - 1).long()
        clip = tv_tensors.Video(video[:, index].permute(1, 0, 2, 3).to(torch.uint8))  # uint8, as rs3d outputs
        sample["video"] = augment(clip).as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()
        return sample

    return transform


def _pytorchvideo_child(paths: list[str], seed: int, setting: BenchSetting, fps: float, commands: Any,
                        results: Any) -> None:
    """In a spawned process: pytorchvideo's LabeledVideoDataset (decord decoder, RandomClipSampler), one timed clip
    per command until the command is None."""
    try:
        import warnings

        torch.set_num_threads(1)
        random.seed(seed)
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            from pytorchvideo.data import (
                LabeledVideoDataset,
                RandomClipSampler,
                encoded_video,
            )
            from pytorchvideo.data.encoded_video_decord import EncodedVideoDecord

        class OneThreadDecord(EncodedVideoDecord):
            """pytorchvideo's decord video with one decoding thread (its default, 0, means one per core)."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["num_threads"] = 1
                super().__init__(*args, **kwargs)

        encoded_video.select_video_class = lambda decoder: OneThreadDecord
        duration = Fraction(setting.num_frames * setting.sampling_rate) / Fraction(fps).limit_denominator(1001)
        dataset = LabeledVideoDataset([(p, {"label": 0}) for p in paths], RandomClipSampler(duration),
                                      transform=_pytorchvideo_transform(setting), decode_audio=False,
                                      decoder="decord")
        iterator = iter(dataset)
        while commands.get() is not None:
            watch = Stopwatch()
            try:
                sample = next(iterator)
            except StopIteration:  # one pass over the video sampler is an epoch; start the next
                iterator = iter(dataset)
                watch = Stopwatch()
                sample = next(iterator)
            results.put({"elapsed": watch.elapsed(), "shape": tuple(sample["video"].shape)})
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        results.put({"error": f"{type(exc).__name__}: {exc}"})


class PytorchvideoPeer:
    """Row (3): pytorchvideo LabeledVideoDataset with decoder="decord" + torchvision v2, in a spawned process (its
    decord backend switches decord's global bridge to torch at import), stepped clip by clip from here so that it
    takes turns with the rs3d rows and sees the same machine load."""

    def __init__(self, paths: Sequence[str], seed: int = 0, setting: BenchSetting = BenchSetting(),
                 fps: float = 30.0):
        ctx = mp.get_context("spawn")
        self._commands, self._results = ctx.Queue(), ctx.Queue()
        self._process = ctx.Process(target=_pytorchvideo_child,
                                    args=(list(paths), seed, setting, fps, self._commands, self._results), daemon=True)
        self._process.start()
        self._expected = (3, setting.num_frames, setting.train_crop, setting.train_crop)
        self.timing = Timing("3", "pytorchvideo: LabeledVideoDataset(decord) + torchvision v2", "original")

    def step(self, timed: bool) -> None:
        """Time one pytorchvideo clip (counted in the row when ``timed``)."""
        self._commands.put("clip")
        while True:
            try:
                result = self._results.get(timeout=1.0)
                break
            except queue_module.Empty:
                if not self._process.is_alive():
                    raise RuntimeError(f"pytorchvideo process died with exit code {self._process.exitcode}") from None
        if "error" in result:
            raise RuntimeError(f"pytorchvideo measurement failed: {result['error']}")
        if result["shape"] != self._expected:
            raise RuntimeError(f"pytorchvideo clips have shape {result['shape']}, expected {self._expected}")
        if timed:
            self.timing.add(result["elapsed"])

    def close(self) -> None:
        """Stop the process."""
        self._commands.put(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
