"""Rolling predictions on a live source: a webcam, a network stream (RTSP, HTTP, UDP, HLS) or a file read as a stream,
decoded frame by frame with PyAV.

The model's clip is kept as a ring buffer of the last ``num_frames`` frames taken every ``sampling_rate`` source
frames (or at ``target_fps``), so every prediction sees the same temporal footprint as in training and testing;
one prediction is made every ``stride_sec`` seconds of stream time once the buffer is full. Stream time counts from
the first frame read, whatever the source's first timestamp (a live MPEG-TS joined late starts anywhere).
"""
from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from rs3d.data.decoders import VideoDecodeError

#: How a webcam index is opened on each platform (PyAV format name, device path pattern).
WEBCAMS = {"linux": ("v4l2", "/dev/video{}"), "darwin": ("avfoundation", "{}"), "win32": ("dshow", "video={}")}


@dataclass
class StreamPrediction:
    """The top classes of the clip that ends at ``time`` seconds of the stream (counted from its first frame)."""

    time: float
    top: list[tuple[str, float]]

    def to_dict(self) -> dict:
        return {"time": round(self.time, 3), "top": [{"name": n, "prob": round(p, 6)} for n, p in self.top]}


def open_source(source: str, platform: str = sys.platform):
    """A PyAV input container: an integer is a webcam index (v4l2 / avfoundation / dshow), anything else a URL or
    path FFmpeg can read."""
    import av

    try:
        if source.isdigit():
            fmt, pattern = WEBCAMS.get(platform, WEBCAMS["linux"])
            return av.open(pattern.format(source), format=fmt)
        return av.open(source, timeout=(10.0, 10.0)) if "://" in source else av.open(source)
    except (av.error.FFmpegError, OSError) as e:
        raise VideoDecodeError(source, f"cannot open the stream ({e})") from None


def frame_step(fps: float, sampling_rate: int, target_fps: float = 0.0) -> float:
    """Source frames between two clip frames: ``sampling_rate``, measured at ``target_fps`` when one is set."""
    return sampling_rate * (fps / target_fps if target_fps else 1.0)


def rolling_predictions(predictor, source: str, stride_sec: float = 1.0,
                        max_sec: float | None = None) -> Iterator[StreamPrediction]:
    """Predictions every ``stride_sec`` seconds of stream time for ``source`` (see :func:`open_source`) with a
    :class:`rs3d.inference.Predictor`; ends with the stream or after ``max_sec`` seconds of it."""
    if stride_sec <= 0:
        raise ValueError(f"stride must be positive, got {stride_sec}")
    spec = predictor.spec
    container = open_source(source)
    try:
        stream = container.streams.video[0]
    except IndexError:
        container.close()
        raise VideoDecodeError(source, "no video stream") from None
    fps = float(stream.average_rate or stream.guessed_rate or 30.0)
    step = frame_step(fps, spec.sampling_rate, spec.target_fps)
    clip: deque[np.ndarray] = deque(maxlen=spec.num_frames)
    next_take, next_prediction, index, start = 0.0, 0.0, 0, None
    try:
        for frame in container.decode(stream):
            if frame.pts is not None and start is None:
                start = frame.pts  # a live stream joined late starts at any timestamp: times count from here
            time = float((frame.pts - start) * frame.time_base) if frame.pts is not None else index / fps
            if max_sec is not None and time > max_sec:
                break
            # clip frame k is source frame floor(k * step), as in clip_indices: a frame is taken once per k that
            # falls on it (twice or more when TARGET_FPS is above the source's fps, none between far-apart takes)
            if next_take < index + 1 - 1e-6:
                rgb = frame.to_ndarray(format="rgb24")
                while next_take < index + 1 - 1e-6:
                    clip.append(rgb)
                    next_take += step
            index += 1
            if len(clip) == spec.num_frames and time >= next_prediction - 1e-6:
                frames = torch.from_numpy(np.stack(clip)).permute(3, 0, 1, 2)  # (3, T, H, W) uint8
                yield StreamPrediction(time, predictor.top_classes(predictor.predict_clip(frames)))
                next_prediction = time + stride_sec
    finally:
        container.close()
