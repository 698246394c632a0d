"""Clip datasets: decode each video once, cut every clip and view from that one decode.

A video that cannot be decoded never kills a worker. Training replaces it by another video
(deterministic, bounded retries); testing returns a placeholder marked invalid so evaluation can
drop it. Either way the failure travels with the batch (``failures``) so the main process logs
each bad file once and counts skips per epoch (see :class:`SkipTracker`).

A decoder that crashes the worker process itself (a segfault in native code) cannot be caught here; the
dataset records which video each worker is decoding in shared memory (:class:`InFlight`) so the main process
can name it; videos passed to ``exclude`` are treated as unreadable from then on.

A stream that ends before the frame count its header declares is sampled within the frames that decode: the
count learnt from the first early end (or from ``<split>.meta.json``) is kept for later visits.
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from rs3d.data.annotations import VideoRecord
from rs3d.data.batch import ClipBatch
from rs3d.data.clip_sampling import (
    ClipSpec,
    clip_indices,
    merge_indices,
    random_start,
    start_step,
    uniform_starts,
)
from rs3d.data.decoders import VideoDecodeError, VideoInfo, default_backends, open_video, probe_with
from rs3d.data.epoch_sampler import sample_seed
from rs3d.data.transforms import (
    TestClipTransform,
    TrainClipTransform,
    decode_scale,
    frames_to_tensor,
    scaled_size,
)

logger = logging.getLogger(__name__)


class InFlight:
    """Which video each DataLoader worker is decoding ("pid<TAB>path" per worker slot), in shared memory that
    survives the worker's death, so the main process can name the file when a worker dies in native code."""

    SLOTS, WIDTH = 64, 1024

    def __init__(self) -> None:
        self._buffer = multiprocessing.RawArray(ctypes.c_char, self.SLOTS * self.WIDTH)

    def _slot(self) -> slice | None:
        worker = get_worker_info()
        if worker is None:
            return None  # decoding in the main process: a crash there ends the process anyway
        start = worker.id % self.SLOTS * self.WIDTH
        return slice(start, start + self.WIDTH)

    def set(self, path: str | None) -> None:
        slot = self._slot()
        if slot is not None:
            text = f"{os.getpid()}\t{path}".encode(errors="replace")[: self.WIDTH - 1] if path else b""
            self._buffer[slot] = text.ljust(self.WIDTH, b"\0")

    def paths(self, pids: set[int] | None = None) -> list[str]:
        """Videos being decoded right now, by the workers with ``pids`` (all workers when None)."""
        found = []
        for i in range(self.SLOTS):
            raw = self._buffer[i * self.WIDTH:(i + 1) * self.WIDTH].split(b"\0", 1)[0]
            if raw:
                pid, _, path = raw.decode(errors="replace").partition("\t")
                if pids is None or (pid.isdigit() and int(pid) in pids):
                    found.append(path)
        return found

    def clear(self) -> None:
        self._buffer[:] = b"\0" * len(self._buffer)


class _VideoSource(Dataset):
    """Shared decoding: cached probe, backend then fallback, and re-sampling inside a truncated stream."""

    def __init__(self, records: Sequence[VideoRecord], spec: ClipSpec, backends: Sequence[str]):
        if not records:
            raise ValueError("dataset has no videos")
        # No backends given: the registry's default ones, in its order (decord, then PyAV).
        self.records, self.spec, self.backends = list(records), spec, tuple(backends) or default_backends()
        self._info_cache: dict[str, VideoInfo] = {}  # filled lazily inside each worker
        self.in_flight = InFlight()
        self.excluded: dict[str, str] = {}  # path -> why; set in the main process before workers start

    def exclude(self, path: str, reason: str) -> None:
        """Treat ``path`` as unreadable from now on (workers started later see it)."""
        self.excluded[path] = reason

    def __len__(self) -> int:
        return len(self.records)

    def preload_info(self, infos: dict[str, VideoInfo]) -> None:
        """Known stream facts (e.g. from a metadata file), shared by every worker after the fork."""
        self._info_cache.update(infos)

    def info(self, path: str) -> VideoInfo:
        """Stream facts of ``path``, probed once per worker (by the backends' own probe if they have one)."""
        if path not in self._info_cache:
            self._info_cache[path] = probe_with(path, self.backends)
        return self._info_cache[path]

    def load(self, path: str) -> Any:
        """``_load(path)`` (probe, decode, transform) unless the video is excluded, recorded as in flight."""
        if path in self.excluded:
            raise VideoDecodeError(path, self.excluded[path])
        self.in_flight.set(path)
        try:
            return self._load(path)
        finally:
            self.in_flight.set(None)

    def _load(self, path: str) -> Any:
        raise NotImplementedError

    def decode(self, path: str, size: tuple[int, int] | None,
               choose_clips) -> tuple[torch.Tensor, list[np.ndarray]]:
        """Decode the union of the clips chosen by ``choose_clips(num_frames, fps)`` once.

        Returns (U, 3, H, W) uint8 frames and each clip's positions into them. Tries each backend in
        turn; when a stream ends early, re-chooses the clips inside the frames that can be decoded.
        """
        info = self.info(path)
        errors = []
        for backend in self.backends:
            try:
                reader = open_video(path, backend, size, info)
            except VideoDecodeError as exc:
                errors.append(exc.reason)
                continue
            num_frames = min(reader.info.num_frames, info.num_frames)  # the decodable count, once known
            for _ in range(2):
                clips = choose_clips(num_frames, reader.info.fps)
                unique, positions = merge_indices(clips)
                try:
                    frames = reader.get_frames(unique)
                    reader.close()
                    return frames_to_tensor(frames), positions
                except VideoDecodeError as exc:
                    errors.append(exc.reason)
                    if not exc.decodable_frames or exc.decodable_frames >= num_frames:
                        break
                    num_frames = exc.decodable_frames
                    # Later visits sample inside the decodable frames at once (this worker's cache).
                    self._info_cache[path] = info = replace(info, num_frames=num_frames)
            reader.close()
        raise VideoDecodeError(path, "; ".join(dict.fromkeys(errors)))


class TrainClipDataset(_VideoSource):
    """Random clip(s) per video with augmentation; ``clips_per_video`` > 1 is repeated augmentation.

    Indexed by ``(epoch, index)`` (see :class:`~rs3d.data.epoch_sampler.EpochSampler`) or a plain index
    (epoch 0); the random draws of a sample depend only on (seed, epoch, index). With ``augment_on_device``
    the clips come back cropped but not resized or augmented, as a list of K (T, h, w, 3) crops, with their draws
    under ``augment`` (see :mod:`rs3d.data.device_inputs`); the draws are the same either way.
    """

    def __init__(self, records: Sequence[VideoRecord], spec: ClipSpec, transform: TrainClipTransform,
                 backends: Sequence[str] = (), clips_per_video: int = 1, max_retries: int = 10,
                 seed: int = 0, augment_on_device: bool = False):
        super().__init__(records, spec, backends)
        self.transform, self.clips_per_video, self.max_retries = transform, clips_per_video, max_retries
        self.seed, self.augment_on_device = seed, augment_on_device

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = item if isinstance(item, tuple) else (0, item)
        with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG untouched (num_workers=0)
            torch.manual_seed(sample_seed(self.seed, epoch, index))
            return self._sample(index)

    def _sample(self, index: int) -> dict[str, Any]:
        failures = []
        for attempt in range(self.max_retries + 1):
            current = replacement_index(index, attempt, len(self))
            record = self.records[current]
            try:
                video, augment = self.load(record.path)
                sample = {"video": video, "label": record.label, "index": current, "failures": failures}
                return sample if augment is None else {**sample, "augment": augment}
            except VideoDecodeError as exc:
                failures.append((record.path, exc.reason))
        paths = ", ".join(p for p, _ in failures[:3])
        raise RuntimeError(f"{len(failures)} videos in a row failed to decode (first: {paths}); "
                           "is the dataset readable? run tools/check_dataset.py")

    def _load(self, path: str) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        info = self.info(path)
        boxes = [self.transform.sample_box(info.height, info.width) for _ in range(self.clips_per_video)]
        size = scaled_size(info.height, info.width, decode_scale(boxes, self.transform.crop_size))

        def choose(num_frames: int, fps: float) -> list[np.ndarray]:
            step = start_step(self.spec, fps, info.ref_step)
            starts = [random_start(self.spec, num_frames, fps, step=step) for _ in boxes]
            return [clip_indices(self.spec, s, num_frames, fps) for s in starts]

        frames, positions = self.decode(path, size, choose)
        scale = (frames.shape[-2] / info.height, frames.shape[-1] / info.width)
        if self.augment_on_device:  # K (T, h, w, 3) crops of any size and their draws, for BatchAugment
            clips = [self.transform.cut(_take(frames, pos), box, scale) for pos, box in zip(positions, boxes)]
            return clips, self.transform.encode([self.transform.draw(len(pos)) for pos in positions])
        # (K, 3, T, crop, crop) augmented clips
        clips = [self.transform(_take(frames, pos), box, scale) for pos, box in zip(positions, boxes)]
        return (clips[0].unsqueeze(0) if len(clips) == 1 else torch.stack(clips)), None


class TestClipDataset(_VideoSource):
    """All ``num_clips`` x ``num_crops`` views of a video from a single decode at the test size."""

    __test__ = False  # not a pytest test class

    def __init__(self, records: Sequence[VideoRecord], spec: ClipSpec, transform: TestClipTransform,
                 num_clips: int = 10, backends: Sequence[str] = ()):
        super().__init__(records, spec, backends)
        self.transform, self.num_clips = transform, num_clips

    def num_views(self) -> int:
        return self.num_clips * self.transform.num_crops

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        try:
            video, failures, valid = self.load(record.path), [], True
        except VideoDecodeError as exc:
            size = self.transform.crop_size
            video = torch.zeros(self.num_views(), 3, self.spec.num_frames, size, size, dtype=torch.uint8)
            failures, valid = [(record.path, exc.reason)], False
        return {"video": video, "label": record.label, "index": index, "failures": failures, "valid": valid}

    def _load(self, path: str) -> torch.Tensor:
        info = self.info(path)
        size = self.transform.decode_size(info.height, info.width)

        def choose(num_frames: int, fps: float) -> list[np.ndarray]:
            step = start_step(self.spec, fps, info.ref_step)
            starts = uniform_starts(self.spec, num_frames, fps, self.num_clips, step)
            return [clip_indices(self.spec, s, num_frames, fps) for s in starts]

        frames, positions = self.decode(path, size, choose)
        return self.transform(frames, positions)  # (clips * crops, 3, T, S, S), clip-major


def _take(frames: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
    """Frames at ``positions``; no copy when they are all the decoded frames in order."""
    if len(positions) == len(frames) and np.array_equal(positions, np.arange(len(frames))):
        return frames
    return frames[torch.from_numpy(positions)]


def replacement_index(index: int, attempt: int, size: int) -> int:
    """The video that stands in for ``index`` on retry ``attempt`` (0 = itself): deterministic, spread out."""
    if attempt == 0 or size == 1:
        return index
    return (index + 1 + (index * 104729 + attempt * 7919) % (size - 1)) % size


def collate_clips(samples: list[dict[str, Any]]) -> ClipBatch:
    """Stack a batch; training clips of one video are flattened into the batch (repeated augmentation)."""
    videos = [s["video"] for s in samples]
    labels = torch.tensor([s["label"] for s in samples])
    indices = torch.tensor([s["index"] for s in samples])
    batch: ClipBatch = {"failures": [f for s in samples for f in s["failures"]]}
    if "valid" in samples[0]:  # test: (N, views, 3, T, H, W), one row per video
        batch.update(video=torch.stack(videos), label=labels, index=indices,
                     valid=torch.tensor([s["valid"] for s in samples]))
    else:  # train: (N * K, 3, T, H, W), or a list of N * K crops under DATA.AUGMENT_ON_DEVICE
        per_video = len(videos[0])
        video = [clip for clips in videos for clip in clips] if isinstance(videos[0], list) else torch.cat(videos)
        batch.update(video=video, label=labels.repeat_interleave(per_video), index=indices.repeat_interleave(per_video))
        if "augment" in samples[0]:  # DATA.AUGMENT_ON_DEVICE: the clips' draws, concatenated like the clips
            batch["augment"] = {key: torch.cat([s["augment"][key] for s in samples]) for key in samples[0]["augment"]}
    return batch


class SkipTracker:
    """Logs each undecodable file once (in the main process) and counts skips per epoch and overall."""

    def __init__(self) -> None:
        self.reported: dict[str, str] = {}
        self.epoch_skips = 0
        self.total_skips = 0

    def update(self, failures: list[tuple[str, str]]) -> None:
        for path, reason in failures:
            self.epoch_skips += 1
            self.total_skips += 1
            if path not in self.reported:
                self.reported[path] = reason
                logger.warning("skipped unreadable video %s: %s", path, reason)

    def end_epoch(self) -> int:
        """Return and reset this epoch's skip count."""
        count, self.epoch_skips = self.epoch_skips, 0
        return count
