"""Stream facts of a video (size as displayed, fps, frame count, rotation, codec, skippable-frame layout), read
with PyAV from its header and first frame; what a sampler needs before any backend opens the video.

Videos written by ``rs3d-prepare-data`` put a non-reference frame (a B-frame) at every odd position, which
:func:`probe_video` reads from x264's settings as ``ref_step=2``; a backend that can skip such frames (the
``skip_nonref`` capability) then decodes half the frames of a clip on even frames only.
"""
from __future__ import annotations

import re
from typing import Any

from rs3d.data.decoders.base import VideoDecodeError, VideoInfo, check_file, close_source, normalise_rotation
from rs3d.utils import paths


def probe_video(path: str) -> VideoInfo:
    """Read stream facts (size, fps, frame count, rotation, codec) with PyAV, decoding one frame."""
    import av

    check_file(path)
    source = None
    try:
        source = paths.reader_source(path)
        with av.open(source) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "no video stream (audio-only or not a video)")
            stream = container.streams.video[0]
            first, head = _first_frame(container, stream)
            if first is None:
                raise VideoDecodeError(path, "video stream holds no decodable frame")
            rotation = normalise_rotation(first.rotation)
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            num_frames = stream.frames or _count_video_packets(path)
            height, width = stream.codec_context.height, stream.codec_context.width
            if rotation in (90, 270):
                height, width = width, height
            codec = stream.codec_context.name
            extradata = bytes(stream.codec_context.extradata or b"")
            ref_step = reference_step(x264_options(extradata + head)) if codec == "h264" else 1
            return VideoInfo(num_frames, fps, height, width, rotation, codec, ref_step)
    except VideoDecodeError:
        raise
    except Exception as exc:  # PyAV raises many error classes (InvalidDataError, OSError, ...)
        raise VideoDecodeError(path, f"{type(exc).__name__}: {exc}") from None
    finally:
        close_source(source)


def _first_frame(container, stream) -> tuple[Any, bytes]:
    """The first decodable frame (None if there is none) and the bytes of the first packet."""
    head = b""
    for packet in container.demux(stream):
        if not head and packet.size:
            head = bytes(packet)
        frames = packet.decode()
        if frames:
            return frames[0], head
    return None, head


def x264_options(data: bytes) -> dict[str, str]:
    """x264's settings, which it writes into the stream as an SEI text ("... options: cabac=1 ref=3 ..."), found
    in ``data`` (codec extradata and the first packet); empty when the encoder was not x264."""
    match = re.search(rb"x264 - core .*? options: ([ -~]*)", data)
    if not match:
        return {}
    return dict(item.split("=", 1) for item in match.group(1).decode("ascii").split() if "=" in item)


def reference_step(options: dict[str, str]) -> int:
    """2 when x264's settings place a non-reference B-frame at every odd position, as prepare_dataset.py writes:
    one B-frame at a time (fixed, no pyramid), closed GOPs of even length, no scene-cut keyframes; else 1."""
    fixed = {"bframes": "1", "b_pyramid": "0", "b_adapt": "0", "open_gop": "0", "scenecut": "0", "interlaced": "0"}
    keyint = options.get("keyint", "")
    if all(options.get(key) == value for key, value in fixed.items()) and keyint.isdigit() and int(keyint) % 2 == 0:
        return 2
    return 1


def _count_video_packets(path: str) -> int:
    """Frames of a video whose container declares no count (WebM, Matroska, variable frame rate), by demuxing its
    video packets without decoding them: one packet per frame, exact where duration x frame rate is not (a VFR
    Matroska file of 40 frames declares 32 s at 25 fps)."""
    import av

    source = paths.reader_source(path)
    try:
        with av.open(source) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    finally:
        close_source(source)
