"""The PyAV backend: seeks to the keyframe before a clip and decodes forward on one thread, leaving unwanted
non-reference frames undecoded (FFmpeg's ``skip_frame``), and applies rotation metadata itself, so it reads every
video decord cannot read as stored (rotated ones, prepared ones with skippable odd frames).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from rs3d.data.decoders.base import VideoDecodeError, VideoInfo, close_source, first_line, rotate, stored_size
from rs3d.data.decoders.probe import probe_video
from rs3d.data.decoders.registry import Capabilities, register_backend
from rs3d.utils import paths


def quiet_pyav() -> None:
    """Silence FFmpeg's own stderr logging in PyAV."""
    import av

    av.logging.set_level(av.logging.PANIC)


@register_backend("pyav", Capabilities(seek=True, skip_nonref=True, file_objects=True, rotation=True),
                  priority=10, quiet=quiet_pyav, default=True)
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
        self._stored = stored_size(size, self.rotation)
        h, w = size if size else (info.height, info.width)
        self.info = replace(info, height=h, width=w)
        self.frames_decoded = 0  # by the last get_frames call, skipped frames not counted
        self._source = None
        try:
            self._source = paths.reader_source(path)
            self._container = av.open(self._source)
        except Exception as exc:
            close_source(self._source)
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
        return rotate(np.stack([decoded[int(i)] for i in indices]), self.rotation)

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
            raise VideoDecodeError(self.path, f"PyAV cannot decode: {first_line(exc)}", last + 1 or None) from None
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
        close_source(self._source)
