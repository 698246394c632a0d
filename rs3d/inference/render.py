"""``--render``: a copy of a video with the current top-3 labels drawn on its frames (PyAV in and out)."""
from __future__ import annotations

import bisect
import contextlib

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rs3d.data.decoders import VideoDecodeError
from rs3d.data.decoders.base import normalise_rotation, rotate
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_path


def label_lines(timeline: list[dict], whole: list[tuple[str, float]], seconds: float, k: int = 3) -> list[str]:
    """Top-k lines for the frame at ``seconds``: the latest window started by then, else the whole video's."""
    if timeline:
        starts = [w["start"] for w in timeline]
        window = timeline[max(0, bisect.bisect_right(starts, seconds) - 1)]
        return [f"{t['name']} {t['prob']:.2f}" for t in window["top"][:k]]
    return [f"{name} {prob:.2f}" for name, prob in whole[:k]]


def draw_lines(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """Draw text lines on a dark box in the top-left corner of an (H, W, 3) uint8 frame."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    size = max(10, min(image.size) // 16)
    font = ImageFont.load_default(size=size)
    height = (size + 4) * len(lines) + 4
    width = max(int(draw.textlength(line, font=font)) for line in lines) + 8 if lines else 0
    draw.rectangle([0, 0, width, height], fill=(0, 0, 0))
    for i, line in enumerate(lines):
        draw.text((4, 4 + i * (size + 4)), line, fill=(255, 255, 0), font=font)
    return np.asarray(image)


def render_video(src: str, dst: str, timeline: list[dict], whole: list[tuple[str, float]]) -> int:
    """Re-encode ``src`` to ``dst`` (H.264, same fps, even size) with labels drawn; atomic; returns frames written.
    Frames are turned upright as players show them (display matrix), and labelled by their time since the first
    frame (the timeline's zero, whatever the container's first timestamp). Either may be on any iopath handler."""
    written, start = 0, None
    try:
        reader = paths.reader_source(src)
        with (contextlib.nullcontext() if isinstance(reader, str) else reader, atomic_path(dst) as tmp,
              av.open(reader) as source, av.open(tmp, "w", format="mp4") as target):
            stream = source.streams.video[0]
            rate = stream.average_rate or 30
            out = target.add_stream("libx264", rate=rate)
            out.height, out.width = stream.codec_context.height // 2 * 2, stream.codec_context.width // 2 * 2
            out.pix_fmt = "yuv420p"
            for frame in source.decode(stream):
                if frame.pts is not None and start is None:
                    start = frame.pts
                seconds = float((frame.pts - start) * frame.time_base) if frame.pts is not None else written / float(rate)
                image = rotate(frame.to_ndarray(format="rgb24")[None], normalise_rotation(frame.rotation))[0]
                if not written:  # the upright size, even
                    out.height, out.width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
                image = image[: out.height, : out.width]
                image = draw_lines(np.ascontiguousarray(image), label_lines(timeline, whole, seconds))
                for packet in out.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    target.mux(packet)
                written += 1
            for packet in out.encode():
                target.mux(packet)
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoDecodeError(src, f"cannot render: {exc}") from None
    return written
