"""The PyAV backend: numbers frames in display order from the packets' timestamps (read without decoding from
the start), seeks to the keyframe before a clip and decodes forward on one thread, leaving unwanted
non-reference frames undecoded (FFmpeg's ``skip_frame``), and applies rotation metadata itself, so it reads every
video decord cannot read as stored (rotated ones, prepared ones with skippable odd frames).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from rs3d.data.decoders.base import VideoDecodeError, VideoInfo, close_source, first_line, rotate, stored_size
from rs3d.data.decoders.probe import probe_video
from rs3d.data.decoders.registry import Capabilities, register_backend
from rs3d.utils import paths

# Packets read past the clip when they carry no decoding timestamps, to be sure of the display order
# (H.264 and HEVC reorder at most 16 frames).
_REORDER_MARGIN = 32


@dataclass(frozen=True)
class _DisplayTimes:
    """Presentation timestamps of the displayed frames in display order (all of them when ``complete``), the
    keyframes' presentation timestamps, and whether the timestamps can number frames (``usable``)."""

    times: list[int]
    keys: list[int]
    complete: bool
    usable: bool


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
        self._fresh = True  # nothing read from the container yet
        self._table: _DisplayTimes | None = None

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        wanted = set(int(i) for i in indices)
        if not wanted:
            raise ValueError("no frame indices given")
        final = max(wanted)
        table = self._display_times(final)
        if table is None:  # no usable timestamps (raw H.264, AVI's out-of-order ones): count from the start
            decoded, last, _ = self._decode(wanted, self._frames_by_count())
        else:
            decoded, last, ordered, landed = self._decode_from_keyframe(wanted, table)
            if not ordered or (len(decoded) < len(wanted) and not (landed and last < final)):
                # Frames out of timestamp order, or not a stream that ends early: a seek that missed its keyframe
                # (MPEG-TS), decoded frames whose timestamps the packets did not announce. Count from the start.
                decoded, last, _ = self._decode(wanted, self._frames_by_count())
        missing = sorted(wanted - decoded.keys())
        if missing:
            raise VideoDecodeError(self.path, f"stream ended at frame {last + 1}, wanted {missing[0]}",
                                   decodable_frames=last + 1 if last >= 0 else None)
        return rotate(np.stack([decoded[int(i)] for i in indices]), self.rotation)

    def _decode(self, wanted: set[int], frames) -> tuple[dict[int, np.ndarray], int, bool]:
        """Convert the wanted frames of ``frames`` ((index, frame) in decoding order; index None: a frame that is no
        displayed frame) up to the last wanted one; returns them, the last index seen and whether the indices kept
        increasing."""
        final = max(wanted)
        decoded: dict[int, np.ndarray] = {}
        last, ordered, self.frames_decoded = -1, True, 0
        try:
            for index, frame in frames:
                self.frames_decoded += 1
                if index is None:
                    continue
                ordered &= index > last
                last = max(last, index)
                if index in wanted and index not in decoded:
                    decoded[index] = self._to_array(frame)
                if last >= final:
                    break
        except Exception as exc:  # a damaged packet mid-stream
            raise VideoDecodeError(self.path, f"PyAV cannot decode: {first_line(exc)}", last + 1 or None) from None
        return decoded, last, ordered

    def _decode_from_keyframe(self, wanted: set[int], table: "_DisplayTimes"):
        """Seek to the last keyframe displayed at or before the first wanted frame and decode forward; frame i is
        the one whose timestamp is the i-th smallest of the stream's (``table``). Returns what :meth:`_decode`
        does and whether the seek landed at or before the first wanted frame (MPEG-TS seeks can land past it)."""
        first = min(wanted)
        times = table.times
        target = times[min(first, len(times) - 1)] if times else None
        key = max((k for k in table.keys if target is not None and k <= target), default=None)
        index_of = {t: i for i, t in enumerate(times)}
        wanted_times = {times[i] for i in wanted if i < len(times)}
        seen: list[int] = []

        def frames():
            stream, context = self._stream, self._stream.codec_context
            # Seek to the keyframe's presentation timestamp (MP4 and Matroska seek by it; FFmpeg's MP4 demuxer lands
            # a GOP early when given the smaller decoding timestamp). Should a demuxer land elsewhere, the first
            # frame decoded says so and frames are counted from the start instead.
            seek_to = (stream.start_time or 0) if key is None else key
            self._fresh = False
            try:
                self._container.seek(seek_to, stream=stream, backward=True, any_frame=False)
            except Exception:  # noqa: BLE001 - an unseekable stream: nothing here, frames are counted instead
                return
            for packet in self._container.demux(stream):
                context.skip_frame = "NONREF" if packet.pts is not None and packet.pts not in wanted_times \
                    else "DEFAULT"
                for frame in context.decode(packet):
                    index = index_of.get(frame.pts)
                    if index is not None and not seen:
                        seen.append(index)
                    yield index, frame

        decoded, last, ordered = self._decode(wanted, frames())
        return decoded, last, ordered, bool(seen) and seen[0] <= min(first, len(times) - 1)

    def _display_times(self, final: int) -> "_DisplayTimes | None":
        """The stream's presentation timestamps in display order, known at least up to frame ``final`` (all of them
        when the stream is shorter), and its keyframes' timestamps, read by demuxing packets from the start without
        decoding them; None when packets carry no timestamps or repeat one (then frames can only be counted).

        Why not seek by time alone: frame i is the i-th displayed frame (as the samplers, ``num_frames`` and
        decord number them), and only on a constant frame rate from the stream start is that frame at time
        i / fps. A variable frame rate (a phone dropping frames, duplicated timestamps) and an edit list hiding
        pre-roll frames break that, and no header says so for sure. Reading every packet header up to the clip is
        certain and cheap next to decoding (no pixels; ~3.5 us a packet, 19 ms for 5,400), so the seek lands on a
        keyframe whose index is known by counting, and frames between it and the clip are still left undecoded.
        """
        cached = self._table
        if cached is not None and (cached.complete or len(cached.times) > final):
            return cached if cached.usable else None
        if not self._fresh:
            self._reopen()
        self._fresh = False
        stream = self._stream
        pts: list[int] = []  # of displayed frames (not an edit list's hidden pre-roll), in decoding order
        keys: list[int] = []
        below: list[int] = []  # heap of the timestamps not yet known to be among the first ones displayed
        known, complete, usable, reordered = 0, True, True, False
        try:
            for packet in self._container.demux(stream):
                if not packet.size:  # the demuxer's end-of-stream packet
                    continue
                if packet.pts is None:
                    usable = False
                    break
                reordered |= bool(pts) and packet.pts < pts[-1]
                if packet.is_keyframe:
                    keys.append(packet.pts)
                if packet.is_discard:
                    continue
                pts.append(packet.pts)
                heapq.heappush(below, packet.pts)
                # Later packets decode later (DTS only grows) and display no earlier than they decode (PTS >= DTS):
                # every frame shown before this DTS has been read, so its place in display order is final.
                while below and packet.dts is not None and below[0] < packet.dts:
                    heapq.heappop(below)
                    known += 1
                if known > final or len(pts) > final + _REORDER_MARGIN:
                    complete = False
                    break
        except Exception:  # noqa: BLE001 - a damaged or cut packet: the table ends here
            pass
        times = sorted(pts)
        # Repeated timestamps cannot order frames; and timestamps in decoding order on a stream that reorders frames
        # (B-frames) are made up by the demuxer (AVI stores none): frames then come out in another order.
        usable = usable and len(set(times)) == len(times) and (reordered or not stream.codec_context.has_b_frames)
        if not complete and known <= final:  # stopped by the margin: trust the first final + 1
            known = final + 1
        self._table = _DisplayTimes(times if complete else times[:max(known, 0)], sorted(keys), complete, usable)
        return self._table if usable else None

    def _frames_by_count(self):
        """(index, frame) for every frame from the start of a freshly opened file, numbered by counting."""
        self._reopen()
        self._fresh = False
        yield from enumerate(self._container.decode(self._stream))

    def _reopen(self) -> None:
        import av

        self._container.close()
        if not isinstance(self._source, str):
            self._source.seek(0)
        self._container = av.open(self._source)
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = 1

    def _to_array(self, frame) -> np.ndarray:
        height, width = self._stored if self._stored else (None, None)
        return self._reformatter.reformat(frame, format="rgb24", width=width, height=height).to_ndarray()

    def close(self) -> None:
        self._container.close()
        close_source(self._source)
