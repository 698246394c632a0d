"""The rs3d rows of the worker-throughput table and what they are compared with on the same frame indices: the train
dataset against raw decord and rs3d's readers (rows 1, 1c, 1d, 2, 2p, 5a-5d), the test dataset against per-view
decoding (rows 4a, 4b); the pytorchvideo row (3) takes its turn between them (:mod:`.pytorchvideo_peer`)."""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rs3d.data.annotations import VideoRecord
from rs3d.data.clip_sampling import clip_indices, merge_indices, uniform_starts
from rs3d.data.dataset import TestClipDataset, TrainClipDataset
from rs3d.data.transforms import TestClipTransform, TrainClipTransform
from rs3d.studies.worker_throughput.timing import BenchSetting, Stopwatch, Timing, single_thread

if TYPE_CHECKING:
    from rs3d.studies.worker_throughput.pytorchvideo_peer import PytorchvideoPeer


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
