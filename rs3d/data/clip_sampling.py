"""Which source frames make a clip: pure index arithmetic, shared by training, testing and tools."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SHORT_VIDEO_MODES = ("loop", "pad")


@dataclass(frozen=True)
class ClipSpec:
    """A clip of ``num_frames`` frames, ``sampling_rate`` frames apart at ``target_fps`` (0 = source fps).

    Args:
        num_frames: frames per clip (DATA.NUM_FRAMES).
        sampling_rate: distance between sampled frames, in frames at ``target_fps`` (DATA.SAMPLING_RATE).
        target_fps: resample every video to this frame rate first (0: use each video's own rate).
        short_video: videos shorter than a clip ``"loop"`` back to their start (TF) or ``"pad"`` with the last frame.
    """

    num_frames: int
    sampling_rate: int
    target_fps: float = 0.0
    short_video: str = "loop"

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.sampling_rate < 1:
            raise ValueError(f"num_frames and sampling_rate must be >= 1, got {self.num_frames}, {self.sampling_rate}")
        if self.short_video not in SHORT_VIDEO_MODES:
            raise ValueError(f"short_video must be one of {SHORT_VIDEO_MODES}, got {self.short_video!r}")

    def stride(self, video_fps: float) -> float:
        """Distance between sampled frames in source frames (TARGET_FPS resamples other frame rates)."""
        if self.target_fps > 0 and video_fps > 0:
            return self.sampling_rate * video_fps / self.target_fps
        return float(self.sampling_rate)

    def span(self, video_fps: float) -> float:
        """Source frames covered from the first sampled frame to just past the last."""
        return (self.num_frames - 1) * self.stride(video_fps) + 1


def clip_indices(spec: ClipSpec, start: float, video_frames: int, video_fps: float) -> np.ndarray:
    """Frame indices of the clip starting at ``start``; past the end they loop (TF) or repeat the last frame."""
    if video_frames < 1:
        raise ValueError("video has no frames")
    raw = np.floor(start + np.arange(spec.num_frames) * spec.stride(video_fps)).astype(np.int64)
    if spec.short_video == "loop":
        return raw % video_frames
    return np.minimum(raw, video_frames - 1)


def start_step(spec: ClipSpec, video_fps: float, ref_step: int) -> int:
    """``ref_step`` (see :class:`~rs3d.data.decoders.VideoInfo`) when the clip stride is a multiple of it: a clip
    started on a multiple of it then needs no non-reference frame, and decodes about half the frames; else 1."""
    stride = spec.stride(video_fps)
    if ref_step > 1 and stride == int(stride) and int(stride) % ref_step == 0:
        return ref_step
    return 1


def random_start(spec: ClipSpec, video_frames: int, video_fps: float, generator: torch.Generator | None = None,
                 step: int = 1) -> int:
    """A uniformly random start on a multiple of ``step`` such that the clip fits when the video is long enough
    (else 0)."""
    room = max(video_frames - math.ceil(spec.span(video_fps)), 0)
    return step * int(torch.randint(room // step + 1, (1,), generator=generator))


def uniform_starts(spec: ClipSpec, video_frames: int, video_fps: float, num_views: int,
                   step: int = 1) -> list[float]:
    """``num_views`` starts spread evenly from the first to the last possible position (one view: centred),
    rounded down to a multiple of ``step`` when it is above 1."""
    room = max(video_frames - spec.span(video_fps), 0.0)
    starts = [room / 2] if num_views == 1 else [room * i / (num_views - 1) for i in range(num_views)]
    return starts if step == 1 else [float(step * math.floor(s / step)) for s in starts]


def merge_indices(index_lists: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted unique frames over several clips, and each clip's positions into them (decode once, cut many)."""
    unique = np.unique(np.concatenate(index_lists))
    return unique, [np.searchsorted(unique, idx) for idx in index_lists]
