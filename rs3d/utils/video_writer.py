"""Write RGB frames as an H.264 video with PyAV: one writer for the toy dataset, the benchmarks and the tests."""
from __future__ import annotations

import os

import numpy as np

from rs3d.utils.atomic import atomic_path


def write_h264(path: str | os.PathLike, frames: np.ndarray, fps: int = 30, *, crf: int | None = None,
               preset: str | None = None, gop: int | None = None, x264_params: str | None = None,
               threads: int | None = None, faststart: bool = False, rotation: int = 0) -> str:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames as H.264/yuv420p, atomically; returns ``path``.

    Args:
        path: the output file; its extension picks the container (``.mp4``, ``.mkv``, ``.avi``...).
        frames: the frames, even height and width (yuv420p).
        fps: frame rate stored in the stream.
        crf, preset: x264 quality and speed (None: libx264's defaults, CRF 23 and ``medium``).
        gop: maximum keyframe interval (None: x264's 250).
        x264_params: extra x264 settings, e.g. ``"bframes=1:mbtree=0"``.
        threads: encoder threads (1 makes the bytes reproducible from run to run, together with ``mbtree=0``).
        faststart: put the index (moov) at the front of an mp4.
        rotation: display rotation in degrees, stored as a display matrix (the pixels are not turned).
    """
    import av

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"{path}: yuv420p needs an even frame size, got {frames.shape[2]}x{frames.shape[1]}")
    options = {key: str(value) for key, value in (("crf", crf), ("preset", preset), ("threads", threads),
                                                   ("x264-params", x264_params)) if value is not None}
    container_options = {"movflags": "faststart"} if faststart else {}
    with atomic_path(path) as tmp:
        with av.open(tmp, mode="w", options=container_options) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            if gop:
                stream.codec_context.gop_size = gop
            if options:
                stream.codec_context.options = options
            if rotation:
                stream.set_display_rotation(rotation)
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            container.mux(stream.encode())
    return os.fspath(path)
