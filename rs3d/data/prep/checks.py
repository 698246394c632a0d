"""Dataset health checks: classify every video of a split before training, in crash-proof worker processes
(:mod:`rs3d.data.prep.pool`).

Each video gets one status: ``ok``, ``missing``, ``empty``, ``not_video``, ``audio_only``, ``undecodable``,
``truncated``, ``too_short`` or ``crashed`` (its worker process died), plus "odd" warnings that do not stop
training (unusual fps, size or codec, rotation metadata, one decoder failing where the other works).
A decoder can segfault on a damaged file, so checks run in a pool that survives it and names the culprit. Every
registered decoding backend (:mod:`rs3d.data.decoders.registry`) is tried on the first, middle and last frame.
"""
from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rs3d.data.annotations import VideoRecord
from rs3d.data.decoders import VideoDecodeError, default_backends, get_backend, probe_video
from rs3d.data.decoders.base import first_line
from rs3d.data.decoders.pyav_backend import PyAVReader
from rs3d.data.prep.pool import run_in_pool
from rs3d.utils import paths
from rs3d.utils.tables import markdown_table

#: The backend the checker inspects containers with (streams, packets, where a stream ends); every registered
#: backend is then tried on the video's frames.
INSPECTOR = "pyav"
UNREADABLE = ("missing", "empty", "not_video", "audio_only", "undecodable", "truncated", "crashed")
COMMON_CODECS = ("h264", "hevc", "vp9", "av1", "mpeg4")
FPS_RANGE = (23.0, 61.0)
SHORT_SIDE_RANGE = (128, 1080)
# Leading bytes of common video containers: a file that starts like one but cannot be opened is damaged.
_MAGIC = (b"\x1a\x45\xdf\xa3", b"RIFF", b"FLV", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3", b"OggS")
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


@dataclass
class VideoCheck:
    """What :func:`check_video` found: a status, the problems behind it, warnings, and stream facts."""

    path: str
    ok: bool = True
    status: str = "ok"
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    num_frames: int = 0  # frames that can actually be read (fewer than declared when the stream ends early)
    declared_frames: int = 0  # what the container's header says
    fps: float = 0.0
    height: int = 0
    width: int = 0
    codec: str = ""
    rotation: int = 0
    ref_step: int = 1  # 2: odd frames are skippable non-reference frames (see VideoInfo)
    seconds: float = 0.0

    @property
    def readable(self) -> bool:
        """Usable for training: no problem, or only too short (clips then loop or pad)."""
        return self.status in ("ok", "too_short")

    def fail(self, status: str, reason: str) -> VideoCheck:
        """Record a problem; the first one sets the status."""
        if self.ok:
            self.ok, self.status = False, status
        self.problems.append(f"{status}: {reason}")
        return self


def check_video(path: str, min_frames: int = 1, decode: bool = True) -> VideoCheck:
    """Classify one video; never raises, so a checker bug shows up as a finding rather than a dead run."""
    check = VideoCheck(path)
    try:
        _check(check, path, min_frames, decode)
    except Exception as exc:  # noqa: BLE001 - anything a decoder throws is a property of the file
        check.fail("undecodable", f"unexpected {type(exc).__name__}: {first_line(exc)}")
    return check


def check_split(records: Sequence[VideoRecord | str], workers: int | None = None, min_frames: int = 1,
                decode: bool = True, progress: Callable[[int, int, VideoCheck], None] | None = None
                ) -> list[VideoCheck]:
    """Check every video in worker processes; results in input order, a crashing video marked ``crashed``."""
    paths = [r.path if isinstance(r, VideoRecord) else str(r) for r in records]
    return run_in_pool(functools.partial(check_video, min_frames=min_frames, decode=decode), paths, workers,
                       on_failure=lambda path, reason: VideoCheck(path).fail("crashed", reason), progress=progress)


def format_report(checks: Sequence[VideoCheck], show: int = 5) -> str:
    """Counts per status as a table, then the first ``show`` videos of each problem status and of the odd ones."""
    by_status: dict[str, list[VideoCheck]] = {}
    for check in checks:
        by_status.setdefault(check.status, []).append(check)
    odd = [c for c in checks if c.ok and c.warnings]
    unreadable = [c for c in checks if not c.readable]
    rows = [["ok", len(by_status.get("ok", []))], ["  of which odd (warnings)", len(odd)],
            ["too short", len(by_status.get("too_short", []))], ["unreadable", len(unreadable)]]
    rows += [[f"  {status}", len(by_status[status])] for status in UNREADABLE if status in by_status]
    rows.append(["total", len(checks)])
    lines = [markdown_table(["status", "videos"], rows)]
    for status in (*UNREADABLE, "too_short"):
        lines += _examples(status, by_status.get(status, []), show, lambda c: "; ".join(c.problems))
    lines += _examples("odd", odd, show, lambda c: "; ".join(c.warnings))
    return "\n".join(lines)


def _examples(title: str, checks: list[VideoCheck], show: int, describe) -> list[str]:
    if not checks:
        return []
    more = f", first {show}" if len(checks) > show else ""
    return [f"\n{title} ({len(checks)}{more}):", *(f"  {c.path}: {describe(c)}" for c in checks[:show])]


def _check(check: VideoCheck, path: str, min_frames: int, decode: bool) -> VideoCheck:
    import av

    if not paths.exists(path):
        return check.fail("missing", "file not found")
    if not paths.isfile(path):
        return check.fail("not_video", "not a regular file")
    if paths.is_local(path) and os.path.getsize(path) == 0:  # iopath has no size query: elsewhere the open fails
        return check.fail("empty", "file is 0 bytes")
    source = None
    try:
        source = paths.reader_source(path)
        container = av.open(source)
    except Exception as exc:  # noqa: BLE001 - InvalidDataError, OSError, ...
        if source is not None and not isinstance(source, str):
            source.close()
        reasons = f"PyAV: {first_line(exc)}; {_other_backends(path)}"
        if _looks_like_video_container(path):
            return check.fail("undecodable", f"container header present but cannot be opened (truncated or "
                                             f"damaged?); {reasons}")
        return check.fail("not_video", f"not a media file; {reasons}")
    with container, contextlib.nullcontext() if isinstance(source, str) else source:
        if not container.streams.video:
            if container.streams.audio:
                return check.fail("audio_only", f"{len(container.streams.audio)} audio stream(s), no video stream")
            return check.fail("not_video", "no video stream")
        stream = container.streams.video[0]
        declared, exact = _declared_frames(stream)
        packets, demux_error = _count_packets(container, stream)
    try:
        info = probe_video(path)
    except VideoDecodeError as exc:
        return check.fail("undecodable", f"PyAV: {exc.reason}; {_other_backends(path)}")
    readable = min(declared, packets) if declared else packets
    check.declared_frames = declared
    check.num_frames, check.fps, check.codec, check.rotation = readable, info.fps, info.codec, info.rotation
    check.height, check.width, check.ref_step = info.height, info.width, info.ref_step
    check.seconds = round(readable / info.fps, 3) if info.fps else 0.0
    if demux_error and not packets:
        check.fail("undecodable", f"reading stops after {packets} packets: {demux_error}")
    if decode and readable:
        readable = _decodable_end(check, path, readable, info)
    if declared and readable < (declared if exact else 0.95 * declared - 1):
        # A stream that ends early costs its missing frames, not the video: the loaders sample within the
        # decodable frames (saved in <split>.meta.json).
        check.warnings.append(f"declares {declared} frames but only {readable} decode"
                              + (f" ({demux_error})" if demux_error else "") + "; clips are sampled within those")
    if decode and readable:
        _check_decoders(check, path, sorted({0, readable // 2, readable - 1}), info)
    if readable < min_frames:
        check.fail("too_short", f"{readable} frames, one clip spans {min_frames}")
    _odd_warnings(check)
    return check


def _decodable_end(check: VideoCheck, path: str, readable: int, info) -> int:
    """The number of frames that really decode (PyAV reports where the stream ends), at most ``readable``."""
    try:
        reader = PyAVReader(path, info=info)  # the inspector: it reports where a stream ends
        try:
            reader.get_frames([readable - 1])
        finally:
            reader.close()
    except VideoDecodeError as exc:
        if exc.decodable_frames and exc.decodable_frames < readable:
            readable = exc.decodable_frames
            check.num_frames = readable
            check.seconds = round(readable / check.fps, 3) if check.fps else 0.0
    return readable


def _check_decoders(check: VideoCheck, path: str, indices: list[int], info) -> None:
    """Decode the first, middle and last frame with every default backend (the ones training falls back through);
    all failing makes the video undecodable, some failing a warning naming the ones that work."""
    names = default_backends()
    failures = {b: r for b in names if (r := _try_decode(path, b, indices, info))}
    if len(failures) == len(names):
        check.fail("undecodable", "; ".join(f"{b}: {r}" for b, r in failures.items()))
    for backend, reason in failures.items() if len(failures) < len(names) else ():
        working = ", ".join(b for b in names if b not in failures)
        check.warnings.append(f"{backend} fails ({reason}); training falls back to {working}")


def _try_decode(path: str, backend: str, indices: list[int], info) -> str | None:
    """None if ``backend`` decodes ``indices``, else why not."""
    try:
        reader = get_backend(backend).reader(path, None, info)
        try:
            reader.get_frames(indices)
        finally:
            reader.close()
    except VideoDecodeError as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {first_line(exc)}"
    return None


def _other_backends(path: str) -> str:
    """What each backend other than the inspector (PyAV) says about the first frame: ``"decord: reads it"``."""
    return "; ".join(f"{b}: {_try_decode(path, b, [0], None) or 'reads it'}"
                     for b in default_backends() if b != INSPECTOR)


def _odd_warnings(check: VideoCheck) -> None:
    short = min(check.height, check.width)
    if check.fps and not FPS_RANGE[0] <= check.fps <= FPS_RANGE[1]:
        check.warnings.append(f"unusual fps {check.fps:.2f}")
    if short and not SHORT_SIDE_RANGE[0] <= short <= SHORT_SIDE_RANGE[1]:
        check.warnings.append(f"very {'small' if short < SHORT_SIDE_RANGE[0] else 'large'} "
                              f"({check.width}x{check.height})")
    if check.codec and check.codec not in COMMON_CODECS:
        check.warnings.append(f"unusual codec {check.codec}")
    if check.rotation:
        check.warnings.append(f"rotation metadata ({check.rotation} degrees): decoded with PyAV, slower")


def _declared_frames(stream) -> tuple[int, bool]:
    """Frame count from the container index (exact) or estimated from the duration."""
    if stream.frames:
        return int(stream.frames), True
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    if stream.duration and stream.time_base and fps:
        return round(float(stream.duration * stream.time_base) * fps), False
    return 0, False


def _count_packets(container, stream) -> tuple[int, str]:
    """Video packets that can be read without decoding (cheap), and the error that stopped reading, if any."""
    count = 0
    try:
        for packet in container.demux(stream):
            count += packet.size > 0
    except Exception as exc:  # noqa: BLE001
        return count, first_line(exc)
    return count, ""


def _looks_like_video_container(path: str) -> bool:
    with paths.open_file(path, "rb") as f:
        head = f.read(12)
    return head[4:8] in _MP4_BOXES or head.startswith(_MAGIC)
