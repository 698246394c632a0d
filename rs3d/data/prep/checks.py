"""Dataset health checks: classify every video of a split before training, in crash-proof worker processes.

Each video gets one status: ``ok``, ``missing``, ``empty``, ``not_video``, ``audio_only``, ``undecodable``,
``truncated``, ``too_short`` or ``crashed`` (its worker process died), plus "odd" warnings that do not stop
training (unusual fps, size or codec, rotation metadata, one decoder failing where the other works).
A decoder can segfault on a damaged file, so checks run in a process pool that is restarted after a crash;
the videos that were in flight are then re-run one at a time to name the culprit.
"""
from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TextIO

from rs3d.data.annotations import (
    AnnotationError,
    VideoRecord,
    is_kinetics_csv,
    kinetics_class_names,
    load_class_names,
    read_class_folders,
    read_kinetics_csv,
    read_slowfast_csv,
)
from rs3d.data.decoders import (
    DecordReader,
    PyAVReader,
    VideoDecodeError,
    _first_line,
    probe_video,
)
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_open
from rs3d.utils.class_folders import is_class_folder_dataset
from rs3d.utils.tables import markdown_table

UNREADABLE = ("missing", "empty", "not_video", "audio_only", "undecodable", "truncated", "crashed")
COMMON_CODECS = ("h264", "hevc", "vp9", "av1", "mpeg4")
FPS_RANGE = (23.0, 61.0)
SHORT_SIDE_RANGE = (128, 1080)
CRASHED = "worker process died while reading it (a decoder crash)"
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
    except Exception as exc:  # noqa: BLE001 - anything PyAV or decord throws is a property of the file
        check.fail("undecodable", f"unexpected {type(exc).__name__}: {_first_line(exc)}")
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


def progress_printer(label: str, interval: float = 10.0, stream: TextIO | None = None
                     ) -> Callable[[int, int, Any], None]:
    """A ``progress`` callback that prints ``label: done/total (rate, eta)`` every ``interval`` s and at the end."""
    start = last = time.monotonic()

    def report(done: int, total: int, _result: Any) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= interval:
            last, rate = now, done / max(now - start, 1e-9)
            print(f"{label}: {done}/{total} ({rate:.1f}/s, {(total - done) / rate:.0f} s left)",
                  file=stream or sys.stderr, flush=True)
    return report


def run_in_pool(fn: Callable[[Any], Any], items: Sequence[Any], workers: int | None = None,
                on_failure: Callable[[Any, str], Any] | None = None,
                progress: Callable[[int, int, Any], None] | None = None) -> list[Any]:
    """``[fn(item) for item in items]`` in worker processes; an item whose worker dies or raises gets
    ``on_failure(item, reason)`` instead, and the pool is restarted so the other items still run."""
    on_failure = on_failure or (lambda item, reason: None)
    results: list[Any] = [None] * len(items)
    count = 0

    def finish(index: int, value: Any) -> None:
        nonlocal count
        results[index], count = value, count + 1
        if progress:
            progress(count, len(items), value)

    queue, workers = deque(range(len(items))), max(1, workers or os.cpu_count() or 1)
    while queue:
        suspects = deque(_drain(fn, items, queue, workers, 2 * workers, finish, on_failure))
        while suspects:  # one worker, one item in flight: a second crash names its video
            for index in _drain(fn, items, suspects, 1, 1, finish, on_failure):
                finish(index, on_failure(items[index], CRASHED))
    return results


def pool_context() -> multiprocessing.context.BaseContext:
    """forkserver (spawn where missing): workers never inherit decoder state from the parent, and the
    server imports rs3d.data once, so workers restarted after a crash start in milliseconds."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["rs3d.data.prep.checks", "rs3d.data.prep.reencode", "rs3d.data.prep.toy"])
    return context


def init_worker(handlers: Sequence = ()) -> None:
    """Pool worker start: the parent's iopath handlers (a forkserver worker does not inherit them), quiet decoders."""
    paths.register_handlers(list(handlers))
    quiet_decoders()


def _shareable_handlers() -> list:
    """The parent's iopath handlers that can be sent to a worker (pickled)."""
    shareable = []
    for handler in paths.registered_handlers():
        try:
            pickle.dumps(handler)
        except Exception:  # noqa: BLE001 - locks, sockets...: the worker then lacks that handler
            continue
        shareable.append(handler)
    return shareable


def quiet_decoders() -> None:
    """Silence FFmpeg's own stderr logging in PyAV and decord: every problem is reported in the results."""
    import av
    import decord

    av.logging.set_level(av.logging.PANIC)
    decord.logging.set_level(decord.logging.QUIET)


def read_split(data_dir: str, split: str, path_format: str | None = None, val_fraction: float = 0.1,
               path_prefix: str = "", separator: str = " ") -> list[VideoRecord]:
    """Records of ``data_dir/<split>.csv``, PySlowFast ``path label`` or official Kinetics, paths under
    ``path_prefix`` (default: data_dir); without the CSV, of a class-folder dataset's split as training reads it
    (``val_fraction`` held out when there is no split folder). :func:`split_options` gives a config's values."""
    csv_path = os.path.join(data_dir, f"{split}.csv")
    if not paths.isfile(csv_path) and is_class_folder_dataset(data_dir):
        return read_class_folders(data_dir, split, val_fraction)[0]
    if not paths.isfile(csv_path):
        raise AnnotationError(f"{csv_path}: annotation file not found")
    if not is_kinetics_csv(csv_path):
        return read_slowfast_csv(csv_path, path_prefix or data_dir, separator)
    kwargs = {"path_format": path_format} if path_format else {}
    return read_kinetics_csv(csv_path, path_prefix or data_dir, split_class_names(data_dir, csv_path), **kwargs)


def split_options(cfg) -> dict:
    """:func:`read_split`'s keyword arguments from a config, so the data tools read a split as training does:
    DATA.KINETICS_PATH_FORMAT, DATA.FOLDER_VAL_FRACTION, DATA.PATH_PREFIX, DATA.PATH_LABEL_SEPARATOR."""
    d = cfg.DATA
    return {"path_format": d.KINETICS_PATH_FORMAT, "val_fraction": d.FOLDER_VAL_FRACTION,
            "path_prefix": d.PATH_PREFIX, "separator": d.PATH_LABEL_SEPARATOR}


def split_class_names(data_dir: str, csv_path: str) -> list[str]:
    """Class names as training reads them: data_dir/classnames.json, else the official train CSV's labels."""
    names_file, train_csv = os.path.join(data_dir, "classnames.json"), os.path.join(data_dir, "train.csv")
    if paths.isfile(names_file):
        return load_class_names(names_file)
    return kinetics_class_names(train_csv if paths.isfile(train_csv) and is_kinetics_csv(train_csv) else csv_path)


def write_csv_subset(csv_path: str, records: Sequence[VideoRecord], out_path: str) -> int:
    """Copy the header (if any) and the lines of ``csv_path`` that declared ``records``; returns lines kept.

    Lines are copied verbatim, so the subset keeps the input's format, separators and relative paths. Without
    a CSV (a class-folder dataset) the subset is written as PySlowFast ``path label`` lines, paths relative to
    the folder of ``out_path``.
    """
    if not paths.isfile(csv_path):
        return write_slowfast_csv(records, out_path)
    keep = {int(r.source.rsplit(":", 1)[1]) for r in records}
    header = 1 if is_kinetics_csv(csv_path) else 0
    with paths.open_file(csv_path) as f:
        lines = [line if line.endswith("\n") else line + "\n"
                 for number, line in enumerate(f, start=1) if number <= header or number in keep]
    with atomic_open(out_path) as f:
        f.writelines(lines)
    return len(lines) - header


def write_slowfast_csv(records: Sequence[VideoRecord], out_path: str) -> int:
    """Write ``records`` as PySlowFast ``path label`` lines, paths relative to the folder of ``out_path``; returns
    the lines written."""
    base = paths.parent(out_path)
    with atomic_open(out_path) as f:
        f.writelines(f"{paths.relative(paths.absolute(r.path), base)} {r.label}\n" for r in records)
    return len(records)


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
        reasons = f"PyAV: {_first_line(exc)}; decord: {_try_decode(path, 'decord', [0], None) or 'reads it'}"
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
        decord = _try_decode(path, "decord", [0], None) or "reads it"
        return check.fail("undecodable", f"PyAV: {exc.reason}; decord: {decord}")
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
        reader = PyAVReader(path, info=info)
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
    """Decode the first, middle and last frame with each backend; both failing makes the video undecodable."""
    failures = {b: r for b in ("decord", "pyav") if (r := _try_decode(path, b, indices, info))}
    if len(failures) == 2:
        check.fail("undecodable", "; ".join(f"{b}: {r}" for b, r in failures.items()))
    elif failures:
        [(backend, reason)] = failures.items()
        check.warnings.append(f"{backend} fails ({reason}); training falls back to the other decoder")


def _try_decode(path: str, backend: str, indices: list[int], info) -> str | None:
    """None if ``backend`` decodes ``indices``, else why not."""
    try:
        reader = DecordReader(path) if backend == "decord" else PyAVReader(path, info=info)
        try:
            reader.get_frames(indices)
        finally:
            reader.close()
    except VideoDecodeError as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {_first_line(exc)}"
    return None


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
        return count, _first_line(exc)
    return count, ""


def _looks_like_video_container(path: str) -> bool:
    with paths.open_file(path, "rb") as f:
        head = f.read(12)
    return head[4:8] in _MP4_BOXES or head.startswith(_MAGIC)


def _drain(fn, items, queue: deque, workers: int, in_flight_max: int, finish, on_failure) -> list[int]:
    """Run queued items in a fresh pool; if the pool breaks, return the indices that were in flight."""
    in_flight: dict = {}
    with ProcessPoolExecutor(workers, mp_context=pool_context(), initializer=init_worker,
                             initargs=(_shareable_handlers(),)) as pool:
        while queue or in_flight:
            while queue and len(in_flight) < in_flight_max:
                index = queue.popleft()
                in_flight[pool.submit(fn, items[index])] = index
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = []
            for future in done:
                index = in_flight.pop(future)
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    broken.append(index)
                elif error is not None:
                    finish(index, on_failure(items[index], f"{type(error).__name__}: {_first_line(error)}"))
                else:
                    finish(index, future.result())
            if broken:  # every other future fails too; keep results that made it out before the crash
                wait(in_flight)
                for future, index in in_flight.items():
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        broken.append(index)
                    else:
                        finish(index, future.result() if error is None else on_failure(items[index], repr(error)))
                return broken
    return []

