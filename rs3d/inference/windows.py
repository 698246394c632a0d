"""Sliding windows over a long video: where each window's clip sits, in frames and seconds."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rs3d.data.clip_sampling import ClipSpec, clip_indices


@dataclass(frozen=True)
class Window:
    """One window: its span in seconds and the frame indices of the clip centred in it."""

    start_sec: float
    end_sec: float
    indices: np.ndarray


def sliding_windows(spec: ClipSpec, num_frames: int, fps: float, window_sec: float,
                    stride_sec: float) -> list[Window]:
    """Windows of ``window_sec`` every ``stride_sec``, covering the video; a video shorter than one window
    gets a single window over all of it (the clip loops or pads, as in training)."""
    if window_sec <= 0 or stride_sec <= 0:
        raise ValueError(f"window and stride must be positive, got {window_sec}, {stride_sec}")
    fps = fps if fps > 0 else 30.0
    window, stride = window_sec * fps, stride_sec * fps
    span = spec.span(fps)
    starts = [0.0] if num_frames <= window else list(np.arange(0.0, num_frames - window + 1e-6, stride))
    if num_frames > window and starts[-1] + window < num_frames - 0.5 * stride:
        starts.append(num_frames - window)  # the tail is covered too
    windows = []
    for start in starts:
        length = min(window, num_frames)
        # The clip is centred on the window, but kept inside the video so it never wraps to the other end.
        clip_start = min(max(start + (length - span) / 2, 0.0), max(0.0, num_frames - span))
        windows.append(Window(start / fps, (start + length) / fps,
                              clip_indices(spec, clip_start, num_frames, fps)))
    return windows


def label_window_sec(spec: ClipSpec, fps: float = 30.0) -> float:
    """Window length for labels that follow a video (``--render``, the demo's timeline): about one clip's span at
    ``fps``, rounded to 0.1 s, at least 1 s."""
    return max(1.0, round(spec.span(fps) / fps, 1))
