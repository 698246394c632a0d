"""Data-pipeline throughput per DataLoader worker: the rs3d datasets against raw decord, pytorchvideo and per-view
decoding, on Kinetics-like videos as stored (GOP 250) and as prepared by :func:`rs3d.data.prep.reencode.reencode_video`.

Every measurement is single-threaded (``torch.set_num_threads(1)``, decord ``num_threads=1``), as one worker runs.
The machine is noisy, so pipelines that are compared run side by side: the train pipelines take turns clip by clip
(rs3d, then raw decord on the frame indices rs3d just decoded, then both again on the prepared copy of the same
video, then one pytorchvideo clip), as do the two test pipelines video by video. pytorchvideo lives in a spawned
process, because its decord backend switches decord's global bridge to torch at import, and is stepped from here.

How identical frame indices are guaranteed: the rs3d train dataset is a thin subclass that records the sorted
unique frame indices it hands to the decoder (the clip chosen by ``random_start`` + ``clip_indices``); the raw
decord row then opens a fresh ``decord.VideoReader`` and calls ``get_batch`` on exactly those indices. The rs3d
train dataset draws every sample from a seed that depends only on (seed, epoch, index), so the original and
prepared streams, given the same (epoch, index) items, draw the same crop boxes, starts and augmentations on the
two copies of each video.

The rs3d train rows know every video's stream facts, as the loaders do when check_dataset.py or prepare_dataset.py
has written the split's metadata file; row (1c) repeats row (1) with the per-worker probe cache cleared before every
sample, as a worker without that file sees each video on its first visit. The test rows probe cold.
"""
from __future__ import annotations

import functools
import math
import multiprocessing as mp
import os
import queue as queue_module
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rs3d.data.annotations import VideoRecord
from rs3d.data.dataset import TestClipDataset, TrainClipDataset
from rs3d.data.sampling import ClipSpec, clip_indices, merge_indices, uniform_starts
from rs3d.data.transforms import TestClipTransform, TrainClipTransform
from rs3d.utils.tables import markdown_table
from rs3d.utils.video_writer import write_h264


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


# --------------------------------------------------------------------------------------------- dataset generation


def render_video(seed: int, num_frames: int = 300, height: int = 256, width: int = 340) -> np.ndarray:
    """(T, H, W, 3) uint8 frames: a random 1/f colour texture panned, zoomed and turned, plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    canvas_h, canvas_w = 3 * height, 3 * width
    fy, fx = np.fft.fftfreq(canvas_h)[:, None], np.fft.rfftfreq(canvas_w)[None]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    amplitude = radius ** -1.25  # close to natural-image statistics: detail at every scale
    amplitude[0, 0] = 0.0
    planes = [np.fft.irfft2(amplitude * rng.standard_normal(amplitude.shape)
                            * np.exp(2j * np.pi * rng.random(amplitude.shape)), s=(canvas_h, canvas_w))
              for _ in range(3)]
    mix = rng.normal(0.6, 0.4, (3, 3)) + 0.6 * np.eye(3)
    texture = np.einsum("ij,jhw->ihw", mix, np.stack(planes))
    texture = (texture - texture.mean(axis=(1, 2), keepdims=True)) / texture.std()
    texture = rng.uniform(80, 170, (3, 1, 1)) + 60 * np.tanh(texture * rng.uniform(0.7, 1.5))

    # Camera path in normalised canvas coordinates: a pan across about a third of the canvas, a slow zoom, a turn.
    t = np.arange(num_frames) / num_frames
    direction, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.5)
    zoom = np.exp(0.25 * np.sin(2 * np.pi * (t * rng.uniform(0.5, 1.5) + rng.random()))) / 3
    turn = rng.uniform(-0.3, 0.3) * t
    theta = np.zeros((num_frames, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 1] = zoom * np.cos(turn), -zoom * np.sin(turn) * height / width
    theta[:, 1, 0], theta[:, 1, 1] = zoom * np.sin(turn) * width / height, zoom * np.cos(turn)
    theta[:, 0, 2], theta[:, 1, 2] = speed * np.cos(direction) * (t - 0.5), speed * np.sin(direction) * (t - 0.5)

    source = torch.from_numpy(texture.astype(np.float32))[None]
    noise = torch.Generator().manual_seed(seed)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for first in range(0, num_frames, 50):
        block = torch.from_numpy(theta[first:first + 50])
        grid = torch.nn.functional.affine_grid(block, [len(block), 3, height, width], align_corners=False)
        frames = torch.nn.functional.grid_sample(source.expand(len(block), -1, -1, -1), grid, align_corners=False)
        frames += 4.0 * torch.randn(frames.shape, generator=noise)
        out[first:first + 50] = frames.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def keyframe_count(path: str | os.PathLike) -> int:
    """Number of keyframes in the first video stream (demuxes packets, decodes nothing)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.is_keyframe and packet.size)


def ensure_videos(data_dir: str | os.PathLike, count: int, seconds: float = 10.0, height: int = 256,
                  width: int = 340, fps: int = 30, short_side: int = 256, keyframe_interval: int = 16,
                  tune: str | None = "fastdecode", skippable_odd_frames: bool = True,
                  log: Callable[[str], None] = print) -> tuple[list[str], list[str]]:
    """Originals ``data_dir/original/*.mp4`` (``count`` generated ``video_<i>_<W>x<H>.mp4``; 0 = every mp4 there)
    and their re-encoded copies ``data_dir/prepared_<short side>_k<keyframe interval>_<tune>[_skipodd]/*.mp4``
    (the defaults of prepare_dataset.py); existing files are reused."""
    from rs3d.data.prep.reencode import reencode_video

    original_dir = Path(data_dir) / "original"
    prepared_dir = Path(data_dir) / (f"prepared_{short_side}_k{keyframe_interval}_{tune or 'plain'}"
                                     + ("_skipodd" if skippable_odd_frames else ""))
    if count > 0:
        originals = [original_dir / f"video_{i:03d}_{width}x{height}.mp4" for i in range(count)]
        for i, path in enumerate(originals):
            if not path.is_file() or path.stat().st_size == 0:
                start = time.perf_counter()
                write_h264(path, render_video(i, round(seconds * fps), height, width), fps)
                log(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    else:
        originals = sorted(original_dir.glob("*.mp4"))
        if not originals:
            raise FileNotFoundError(f"no videos in {original_dir}; generate some first")
    prepared = [prepared_dir / path.name for path in originals]
    for src, dst in zip(originals, prepared):
        if not dst.is_file() or dst.stat().st_size == 0:
            dst.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            reencode_video(str(src), str(dst), short_side=short_side, keyframe_interval=keyframe_interval, tune=tune,
                           skippable_odd_frames=skippable_odd_frames)
            log(f"re-encoded {dst} ({time.perf_counter() - start:.1f} s)")
    return [str(p) for p in originals], [str(p) for p in prepared]


# --------------------------------------------------------------------------------------------------- pipelines


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one intra-op torch thread, as inside a DataLoader worker."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class RecordingTrainDataset(TrainClipDataset):
    """``TrainClipDataset`` that remembers the (path, sorted unique frame indices) of its last decode."""

    last_decode: tuple[str, np.ndarray] | None = None

    def decode(self, path: str, size: tuple[int, int] | None, choose_clips) -> tuple[torch.Tensor, list[np.ndarray]]:
        def choose(num_frames: int, fps: float) -> list[np.ndarray]:
            clips = choose_clips(num_frames, fps)
            self.last_decode = (path, merge_indices(clips)[0])
            return clips

        return super().decode(path, size, choose)


def train_transform(setting: BenchSetting) -> TrainClipTransform:
    """The benchmarked rs3d train augmentation: random-resized crop, flip 0.5, RandAugment."""
    return TrainClipTransform(setting.train_crop, mode="rrc", area=(0.08, 1.0), aspect=(0.5, 2.0), flip_prob=0.5,
                              randaug_layers=setting.randaug_layers, randaug_magnitude=setting.randaug_magnitude,
                              randaug_policy=setting.randaug_policy)


def raw_decord_clip(path: str, indices: Sequence[int]) -> np.ndarray:
    """The decoding floor: open ``decord.VideoReader(path, num_threads=1)`` and ``get_batch(indices)``, nothing else."""
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    return reader.get_batch([int(i) for i in indices]).asnumpy()


def rs3d_clip(path: str, indices: Sequence[int], info: Any, backend: str = "decord") -> np.ndarray:
    """rs3d's reader (``open_video``, as the datasets call it, with the stream facts known) on ``indices``, at the
    stored size: decord (which hands prepared copies to PyAV) or PyAV."""
    from rs3d.data.decoders import open_video

    reader = open_video(path, backend, None, info)
    try:
        return reader.get_frames(indices)
    finally:
        reader.close()


def _clear_probe_cache(dataset: Any) -> None:
    """Forget the worker's cached stream facts, as a worker visiting each video once per epoch has none."""
    cache = getattr(dataset, "_info_cache", None)
    if cache is not None:
        cache.clear()


def _records(paths: Sequence[str]) -> list[VideoRecord]:
    """Dataset records for ``paths`` (labels do not matter here)."""
    return [VideoRecord(p, 0) for p in paths]


def measure_train(originals: Sequence[str], prepared: Sequence[str], clips: int, seed: int = 0, warmup: int = 3,
                  setting: BenchSetting = BenchSetting(), pytorchvideo: PytorchvideoPeer | None = None) -> list[Timing]:
    """Rows (1), (1c), (2), (2p), (5a), (5b), (5c): rs3d train ``__getitem__``, then readers alone on the frame indices
    it just decoded (raw decord; rs3d's PyAV reader on originals, rs3d's reader on prepared copies), on the original
    and prepared videos, and a ``pytorchvideo`` clip (row (3)) if given, taking turns clip by clip; ``prepared`` may
    be empty. Rows (1) and (5a) know each video's
    stream facts, as the loaders do from the metadata file that check_dataset.py and prepare_dataset.py write; row
    (1c) probes every video, as a worker's first visit does without that file. The datasets list only the decord
    backend, so a failure raises instead of silently falling back (open_video still reads prepared copies, whose odd
    frames are skippable, with PyAV)."""
    from rs3d.data.decoders import probe_video

    sets = [("original", list(originals))] + ([("prepared", list(prepared))] if prepared else [])
    generator = torch.Generator().manual_seed(seed)
    epochs = math.ceil((warmup + clips) / len(originals))
    items = [(epoch, int(i)) for epoch in range(epochs)  # what EpochSampler hands a worker, epoch by epoch
             for i in torch.randperm(len(originals), generator=generator)][:warmup + clips]
    raw_name = "raw decord: open + get_batch, same indices"
    readers = {"original": [("2", raw_name, lambda path, indices, info: raw_decord_clip(path, indices)),
                            ("2p", "rs3d PyAV reader: open_video(pyav) + get_frames, same indices",
                             functools.partial(rs3d_clip, backend="pyav"))],
               "prepared": [("5b", raw_name, lambda path, indices, info: raw_decord_clip(path, indices)),
                            ("5c", "rs3d reader: open_video + get_frames, same indices", rs3d_clip)]}
    streams = []  # (dataset, probe cold?, rs3d timing, [(reader timing, read(path, indices, info))])
    for label, paths in sets:
        key = "1" if label == "original" else "5a"
        for cold in (False, True) if label == "original" else (False,):
            dataset = RecordingTrainDataset(_records(paths), setting.spec, train_transform(setting),
                                            backends=("decord",), seed=seed)
            if not cold:
                dataset.preload_info({p: probe_video(p) for p in paths})
            name = "rs3d train: TrainClipDataset.__getitem__" + (", probing each video" if cold else "")
            same_indices = [] if cold else [(Timing(k, text, label), read) for k, text, read in readers[label]]
            streams.append((dataset, cold, Timing(key + ("c" if cold else ""), name, label), same_indices))
        # DATA.AUGMENT_ON_DEVICE: what is left to a worker (decode, crop/resize, the draws); rows (1d), (5d).
        dataset = RecordingTrainDataset(_records(paths), setting.spec, train_transform(setting), backends=("decord",),
                                        seed=seed, augment_on_device=True)
        dataset.preload_info({p: probe_video(p) for p in paths})
        name = "rs3d train, DATA.AUGMENT_ON_DEVICE: worker part (decode + crop; resize, flip, RandAugment on the device)"
        streams.append((dataset, False, Timing("1d" if label == "original" else "5d", name, label), []))
    with single_thread():
        for step, item in enumerate(items):
            for dataset, cold, rs3d, same_indices in streams:
                if cold:
                    _clear_probe_cache(dataset)
                dataset.last_decode = None
                watch = Stopwatch()
                sample = dataset[item]
                elapsed = watch.elapsed()
                if sample["index"] != item[1] or dataset.last_decode is None:
                    raise RuntimeError(f"{dataset.records[item[1]].path} did not decode: {sample['failures']}")
                if step >= warmup:
                    rs3d.add(elapsed)
                path, indices = dataset.last_decode
                for timing, read in same_indices:
                    watch = Stopwatch()
                    frames = read(path, indices, dataset.info(path))
                    elapsed = watch.elapsed()
                    assert len(frames) == len(indices)
                    if step >= warmup:
                        timing.add(elapsed)
            if pytorchvideo is not None:
                pytorchvideo.step(timed=step >= warmup)
    timings = [t for _, _, rs3d, same_indices in streams for t in [rs3d] + [timing for timing, _ in same_indices]]
    return timings + ([pytorchvideo.timing] if pytorchvideo is not None else [])


def _crop_view(frames: torch.Tensor, crop: int, position: float) -> torch.Tensor:
    """One square crop at ``position`` (0, 0.5, 1) along the long side of (T, 3, H, W) -> (3, T, crop, crop)."""
    height, width = frames.shape[-2:]
    top = round((height - crop) * position) if height > width else (height - crop) // 2
    left = round((width - crop) * position) if width >= height else (width - crop) // 2
    return frames[..., top:top + crop, left:left + crop].permute(1, 0, 2, 3).contiguous()


def per_view_decode(path: str, setting: BenchSetting, view_range: Sequence[int] | None = None) -> list[torch.Tensor]:
    """PySlowFast-style testing: every view (temporal clip x spatial crop) opens and decodes the video again,
    resizes the short side to the test crop (a no-op on 256p videos) and cuts its crop."""
    import decord
    from torchvision.transforms.v2 import functional as F

    spec, crop = setting.spec, setting.test_crop
    positions = [0.5] if setting.test_crops == 1 else [0.0, 0.5, 1.0]
    views = []
    for view in view_range if view_range is not None else range(setting.test_clips * len(positions)):
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        num_frames, fps = len(reader), float(reader.get_avg_fps())
        start = uniform_starts(spec, num_frames, fps, setting.test_clips)[view // len(positions)]
        frames = reader.get_batch([int(i) for i in clip_indices(spec, start, num_frames, fps)]).asnumpy()
        frames = torch.from_numpy(frames).permute(0, 3, 1, 2)
        if min(frames.shape[-2:]) != crop:
            frames = F.resize(frames, [crop], antialias=True)
        views.append(_crop_view(frames, crop, positions[view % len(positions)]))
    return views


def measure_test(paths: Sequence[str], videos: int, warmup: int = 1, setting: BenchSetting = BenchSetting(),
                 cold_probe: bool = True) -> list[Timing]:
    """Rows (4a), (4b): rs3d ``TestClipDataset`` (all views from one decode) vs per-view decoding, video by video."""
    dataset = TestClipDataset(_records(paths), setting.spec, TestClipTransform(setting.test_crop, setting.test_crops),
                              num_clips=setting.test_clips, backends=("decord",))
    num_views = dataset.num_views()
    shape = f"{setting.test_clips} clips x {setting.test_crops} crops at {setting.test_crop}"
    rs3d = Timing("4a", f"rs3d test: TestClipDataset, {shape}, one decode", "original")
    per_view = Timing("4b", f"per-view decoding: {num_views} x (open + get_batch + crop)", "original")
    with single_thread():
        for step in range(warmup + videos):
            index = step % len(paths)
            if cold_probe:
                _clear_probe_cache(dataset)
            watch = Stopwatch()
            sample = dataset[index]
            elapsed = watch.elapsed()
            assert sample["valid"] and sample["video"].shape[0] == num_views
            view_range = range(min(3, num_views)) if step < warmup else None
            watch = Stopwatch()
            views = per_view_decode(paths[index], setting, view_range)
            elapsed_views = watch.elapsed()
            if step >= warmup:
                assert len(views) == num_views and views[0].shape == sample["video"].shape[1:]
                rs3d.add(elapsed, num_views)
                per_view.add(elapsed_views, num_views)
    return [rs3d, per_view]


# ------------------------------------------------------------------------------------------------- pytorchvideo


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


# ------------------------------------------------------------------------------------------------------ report


ROW_ORDER = ("1", "1c", "1d", "2", "2p", "3", "4a", "4b", "5a", "5b", "5c", "5d")


@dataclass
class Report:
    """All timings of one run, keyed by row, with the table and the target checks."""

    timings: dict[str, Timing] = field(default_factory=dict)

    def add(self, *timings: Timing) -> None:
        """Add (or replace) rows."""
        for timing in timings:
            self.timings[timing.key] = timing

    def ratio(self, a: str, b: str, cpu: bool = False) -> float:
        """Speed of row ``a`` over row ``b`` (> 1: ``a`` is faster), by wall or by CPU time per clip."""
        if cpu:
            return self.timings[b].cpu_ms_per_clip / self.timings[a].cpu_ms_per_clip
        return self.timings[b].ms_per_clip / self.timings[a].ms_per_clip

    def rows(self) -> list[list[str]]:
        """Table rows in ROW_ORDER; the ratios are speeds relative to row (2)."""
        reference = self.timings.get("2")
        rows = []
        for key in ROW_ORDER:
            if key in self.timings:
                t = self.timings[key]
                wall = reference.ms_per_clip / t.ms_per_clip if reference else float("nan")
                cpu = reference.cpu_ms_per_clip / t.cpu_ms_per_clip if reference else float("nan")
                rows.append([f"({key})", t.name, t.videos, f"{t.per_second:.2f}", f"{t.ms_per_clip:.1f}",
                             f"{t.cpu_ms_per_clip:.1f}", f"{wall:.2f}", f"{cpu:.2f}", str(t.clips)])
        return rows

    def table(self) -> str:
        """The rows as a Markdown table."""
        headers = ["#", "pipeline", "videos", "clips/s", "ms/clip", "CPU ms/clip", "x (2)", "x (2) CPU", "timed"]
        return markdown_table(headers, self.rows())

    def checks(self) -> list[tuple[str, float, float, float, str]]:
        """(description, wall ratio, CPU ratio, target, verdict) for each target present in this run; the verdict
        is PASS or FAIL when wall and CPU time agree, else MIXED (the machine's load decided it)."""
        targets = [("(1) rs3d train vs (2) raw decord, same indices", "1", "2", 0.8),
                   ("(1) rs3d train vs (3) pytorchvideo", "1", "3", 2.0),
                   ("(4a) rs3d test vs (4b) per-view decoding", "4a", "4b", 5.0),
                   ("(5c) rs3d reader on prepared vs (2) raw decord on originals", "5c", "2", 3.0),
                   ("(1d) worker with augmentation on the device vs (1) in the worker, originals", "1d", "1", 1.1),
                   ("(5d) worker with augmentation on the device vs (5a) in the worker, prepared", "5d", "5a", 1.4)]
        out = []
        for text, a, b, target in targets:
            if a in self.timings and b in self.timings:
                wall, cpu = self.ratio(a, b), self.ratio(a, b, cpu=True)
                verdict = "PASS" if min(wall, cpu) >= target else "FAIL" if max(wall, cpu) < target else "MIXED"
                out.append((text, wall, cpu, target, verdict))
        return out
