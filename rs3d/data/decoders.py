"""Video decoding behind one small interface: decord by default, PyAV as the fallback.

A reader is opened per sample inside the DataLoader worker (a decord reader created in the parent
before the workers fork hangs them). Only the requested frame indices are returned, already resized
at decode time when an output size is given, so full-resolution frames are never materialised in
Python. decord builds differ in how they treat a rotation (display matrix): 0.6.0 applies it at
native size and applies it *before* a decode-time resize, other builds ignore it. So rotated videos
are decoded with PyAV, which returns stored frames that are rotated here explicitly. Both backends
raise :class:`VideoDecodeError` for every kind of failure (missing, empty, non-video, damaged,
truncated), so callers handle one exception type.

PyAV lets FFmpeg skip unwanted frames that no other frame refers to, which decord cannot. Videos
written by ``tools/prepare_dataset.py`` put such a frame (a B-frame) at every odd position, which
:func:`probe_video` reads from x264's settings as ``ref_step=2``; a clip on even frames only (stride
2, 4, ...) then decodes half the frames, so those videos are read with PyAV.

``import decord`` is satisfied by either ``decord`` or its maintained fork ``decord2``.

A video on another iopath handler (``rs3d.utils.paths``) is opened through ``g_pathmgr`` as a seekable file
object, which PyAV reads as it goes and decord reads whole into memory; local videos are opened by name, as
before, which keeps the decoders' own file access (no Python in the read path).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Any, Protocol, Sequence

import numpy as np

from rs3d.utils import paths

BACKENDS = ("decord", "pyav")


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


def probe_video(path: str) -> VideoInfo:
    """Read stream facts (size, fps, frame count, rotation, codec) with PyAV, decoding one frame."""
    import av

    _check_file(path)
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
            rotation = _normalise_rotation(first.rotation)
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            num_frames = stream.frames or _count_video_packets(path)
            height, width = stream.codec_context.height, stream.codec_context.width
            if rotation in (90, 270):
                height, width = width, height
            codec = stream.codec_context.name
            extradata = bytes(stream.codec_context.extradata or b"")
            ref_step = _reference_step(_x264_options(extradata + head)) if codec == "h264" else 1
            return VideoInfo(num_frames, fps, height, width, rotation, codec, ref_step)
    except VideoDecodeError:
        raise
    except Exception as exc:  # PyAV raises many error classes (InvalidDataError, OSError, ...)
        raise VideoDecodeError(path, f"{type(exc).__name__}: {exc}") from None
    finally:
        _close_source(source)


def open_video(path: str, backend: str = "decord", size: tuple[int, int] | None = None,
               info: VideoInfo | None = None) -> VideoReader:
    """Open ``path`` with ``backend``; ``size`` = (H, W) as displayed resizes every frame at decode time.

    ``info`` (from :func:`probe_video`, if the caller has it) saves a probe. A rotated video always
    goes to PyAV, which applies the rotation (decord's handling of rotation depends on its build), and
    so does a video with skippable odd frames (``ref_step`` 2), which only PyAV can leave undecoded.
    """
    if backend == "decord" and (info is None or (info.rotation == 0 and info.ref_step == 1)):
        return DecordReader(path, size, info)
    if backend in BACKENDS:
        return PyAVReader(path, size, info)
    raise ValueError(f"unknown decoding backend {backend!r}; choose one of {BACKENDS}")


class DecordReader:
    """decord ``VideoReader`` with one decoding thread (the DataLoader workers give the parallelism)."""

    def __init__(self, path: str, size: tuple[int, int] | None = None, info: VideoInfo | None = None):
        import decord

        _check_file(path)
        self.path = path
        height, width = size if size else (-1, -1)
        source = None
        try:
            source = paths.reader_source(path)  # a file object off local disk: decord reads it whole into memory
            self._reader = decord.VideoReader(source, ctx=decord.cpu(0), num_threads=1, width=width, height=height)
            num_frames = len(self._reader)
            if size or info:  # known: no frame needs decoding here
                h, w = size if size else (info.height, info.width)
            else:
                h, w = (0, 0) if num_frames == 0 else self._reader[0].shape[:2]
                self._reader.seek(0)
        except Exception as exc:  # RuntimeError (missing/empty/non-video) or DECORDError (damaged)
            raise VideoDecodeError(path, f"decord cannot open: {_first_line(exc)}") from None
        finally:
            _close_source(source)
        if num_frames == 0:
            raise VideoDecodeError(path, "decord found no frames")
        self.info = VideoInfo(num_frames, float(self._reader.get_avg_fps()), h, w, 0, "")

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        indices = [int(i) for i in indices]
        try:
            frames = self._reader.get_batch(indices).asnumpy()
        except IndexError:
            raise VideoDecodeError(
                self.path, f"frame index {max(indices)} past the end ({self.info.num_frames} frames)"
            ) from None
        except Exception as exc:  # decord.DECORDError subclasses Exception, not RuntimeError
            raise VideoDecodeError(self.path, f"decord cannot decode: {_first_line(exc)}") from None
        return frames

    def close(self) -> None:
        self._reader = None


class PyAVReader:
    """PyAV reader: seeks to the keyframe before the first index and decodes forward, on one thread.

    Packet by packet, a frame that is not wanted may be left undecoded when nothing refers to it
    (``skip_frame=NONREF``): exact on any stream, it halves the frames decoded between a keyframe and a
    clip on x264's default layout, and skips every odd frame of a prepared video (see ``ref_step``).
    """

    def __init__(self, path: str, size: tuple[int, int] | None = None, info: VideoInfo | None = None):
        import av
        from av.video.reformatter import VideoReformatter

        info = info or probe_video(path)
        self.path, self.rotation = path, info.rotation
        self._stored = _stored_size(size, self.rotation)
        h, w = size if size else (info.height, info.width)
        self.info = replace(info, height=h, width=w)
        self.frames_decoded = 0  # by the last get_frames call, skipped frames not counted
        self._source = None
        try:
            self._source = paths.reader_source(path)
            self._container = av.open(self._source)
        except Exception as exc:
            _close_source(self._source)
            raise VideoDecodeError(path, f"PyAV cannot open: {exc}") from None
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = 1  # the DataLoader workers give the parallelism
        # One converter for every frame: Frame.to_ndarray(format=...) builds an swscale context per call (~0.5 ms).
        self._reformatter = VideoReformatter()

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        wanted = set(int(i) for i in indices)
        if not wanted:
            raise ValueError("no frame indices given")
        first, final = min(wanted), max(wanted)
        decoded, last, ordered = self._decode(wanted, self._frames_by_timestamp(first, wanted))
        if len(decoded) < len(wanted) and not (ordered and first <= last < final):
            # Not a stream that ends early: timestamps out of display order (AVI with B-frames), or a seek that
            # missed its keyframe (MPEG-TS). Number the frames by counting them from the start instead.
            decoded, last, _ = self._decode(wanted, self._frames_by_count())
        missing = sorted(wanted - decoded.keys())
        if missing:
            raise VideoDecodeError(self.path, f"stream ended at frame {last + 1}, wanted {missing[0]}",
                                   decodable_frames=last + 1 if last >= 0 else None)
        return _rotate(np.stack([decoded[int(i)] for i in indices]), self.rotation)

    def _decode(self, wanted: set[int], frames) -> tuple[dict[int, np.ndarray], int, bool]:
        """Convert the wanted frames of ``frames`` ((index, frame) in decoding order) up to the last wanted one;
        returns them, the last index seen and whether the indices kept increasing."""
        final = max(wanted)
        decoded: dict[int, np.ndarray] = {}
        last, ordered, self.frames_decoded = -1, True, 0
        try:
            for index, frame in frames:
                self.frames_decoded += 1
                ordered &= index > last
                last = max(last, index)
                if index in wanted and index not in decoded:
                    decoded[index] = self._to_array(frame)
                if last >= final:
                    break
        except Exception as exc:  # a damaged packet mid-stream
            raise VideoDecodeError(self.path, f"PyAV cannot decode: {_first_line(exc)}", last + 1 or None) from None
        return decoded, last, ordered

    def _frames_by_timestamp(self, first: int, wanted: set[int]):
        """(index from the timestamp, frame) from the keyframe at or before frame ``first``; packet by packet,
        frames that are not wanted are skipped where nothing refers to them."""
        stream, context = self._stream, self._stream.codec_context
        target = stream.start_time or 0
        if first > 0 and self.info.fps > 0:
            target += int(first / self.info.fps / stream.time_base)
        try:
            self._container.seek(target, stream=stream, backward=True, any_frame=False)
        except Exception:  # noqa: BLE001 - an unseekable stream (raw H.264): count from the start
            yield from self._frames_by_count()
            return
        for packet in self._container.demux(stream):
            position = None if packet.pts is None else self._position(packet.pts)
            context.skip_frame = "DEFAULT" if position is None or position in wanted else "NONREF"
            for frame in context.decode(packet):
                if frame.pts is None:  # no timestamps at all
                    yield from self._frames_by_count()
                    return
                yield self._position(frame.pts), frame

    def _frames_by_count(self):
        """(index, frame) for every frame from the start of a freshly opened file, numbered by counting."""
        import av

        self._container.close()
        if not isinstance(self._source, str):
            self._source.seek(0)
        self._container = av.open(self._source)
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = 1
        yield from enumerate(self._container.decode(self._stream))

    def _position(self, pts: int) -> int:
        """Frame index of a presentation timestamp (constant frame rate from the stream start)."""
        start = self._stream.start_time or 0
        return int(round(float((pts - start) * self._stream.time_base) * self.info.fps))

    def _to_array(self, frame) -> np.ndarray:
        height, width = self._stored if self._stored else (None, None)
        return self._reformatter.reformat(frame, format="rgb24", width=width, height=height).to_ndarray()

    def close(self) -> None:
        self._container.close()
        _close_source(self._source)


def _check_file(path: str) -> None:
    if not paths.is_local(path):
        if not paths.isfile(path):
            raise VideoDecodeError(path, "file not found")
        return  # iopath has no size query: an empty file fails to open instead
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")


def _close_source(source) -> None:
    """Close what :func:`rs3d.utils.paths.reader_source` opened (nothing for a local path)."""
    if source is not None and not isinstance(source, str):
        source.close()


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


def _x264_options(data: bytes) -> dict[str, str]:
    """x264's settings, which it writes into the stream as an SEI text ("... options: cabac=1 ref=3 ..."), found
    in ``data`` (codec extradata and the first packet); empty when the encoder was not x264."""
    match = re.search(rb"x264 - core .*? options: ([ -~]*)", data)
    if not match:
        return {}
    return dict(item.split("=", 1) for item in match.group(1).decode("ascii").split() if "=" in item)


def _reference_step(options: dict[str, str]) -> int:
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
        _close_source(source)


def _normalise_rotation(rotation: float | None) -> int:
    return int(round((rotation or 0) / 90.0)) % 4 * 90


def _stored_size(size: tuple[int, int] | None, rotation: int) -> tuple[int, int] | None:
    """Output (H, W) as displayed -> the size to ask of the decoder, in the stored orientation."""
    if size is None:
        return None
    return (size[1], size[0]) if rotation in (90, 270) else (size[0], size[1])


def _rotate(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate (N, H, W, C) frames counter-clockwise by ``rotation`` degrees, as players display them."""
    if rotation == 0:
        return frames
    return np.ascontiguousarray(np.rot90(frames, k=rotation // 90, axes=(1, 2)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
