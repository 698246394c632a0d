"""What every decoding backend shares: the stream facts (:class:`VideoInfo`), the one error type
(:class:`VideoDecodeError`, for every kind of failure: missing, empty, non-video, damaged, truncated), the reader
interface, and the file, rotation and message helpers the backends use."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from rs3d.utils import paths


class VideoDecodeError(Exception):
    """A video could not be opened or the requested frames could not be decoded."""

    def __init__(self, path: str, reason: str, decodable_frames: int | None = None):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        # Set when the stream ended early: frames [0, decodable_frames) can still be read.
        self.decodable_frames = decodable_frames


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts a sampler needs; height/width are as displayed (after rotation)."""

    num_frames: int
    fps: float
    height: int
    width: int
    rotation: int = 0
    codec: str = ""
    # Frames at multiples of ref_step decode without the frames between them (non-reference); 1: no such layout.
    ref_step: int = 1


class VideoReader(Protocol):
    """What every backend provides: stream facts and frames at indices."""

    info: VideoInfo

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Return frames at ``indices`` as (N, H, W, 3) uint8 RGB, upright, at the open size."""
        ...

    def close(self) -> None: ...


def check_file(path: str) -> None:
    """Raise :class:`VideoDecodeError` for a missing or (local) empty file before a decoder sees it."""
    if not paths.is_local(path):
        if not paths.isfile(path):
            raise VideoDecodeError(path, "file not found")
        return  # iopath has no size query: an empty file fails to open instead
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")


def close_source(source) -> None:
    """Close what :func:`rs3d.utils.paths.reader_source` opened (nothing for a local path)."""
    if source is not None and not isinstance(source, str):
        source.close()


def normalise_rotation(rotation: float | None) -> int:
    """A display rotation in degrees as 0, 90, 180 or 270."""
    return int(round((rotation or 0) / 90.0)) % 4 * 90


def stored_size(size: tuple[int, int] | None, rotation: int) -> tuple[int, int] | None:
    """Output (H, W) as displayed -> the size to ask of the decoder, in the stored orientation."""
    if size is None:
        return None
    return (size[1], size[0]) if rotation in (90, 270) else (size[0], size[1])


def rotate(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate (N, H, W, C) frames counter-clockwise by ``rotation`` degrees, as players display them."""
    if rotation == 0:
        return frames
    return np.ascontiguousarray(np.rot90(frames, k=rotation // 90, axes=(1, 2)))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for one-line reports."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
