"""Re-encode a dataset for fast training: H.264 at a fixed short side with a short keyframe interval, tuned for
fast decoding.

Random access decodes from the keyframe before each wanted frame, so a 16-frame GOP bounds the frames
decoded and thrown away per clip, and a 256/320 short side makes each decoded frame ~10x cheaper than
720p. Every odd frame is a non-reference B-frame (one B-frame at a time, fixed pattern, no pyramid), so a
clip with an even stride decodes only the even frames (see :class:`rs3d.data.decoders.PyAVReader`).
Output is constant frame rate (decoded frames renumbered at the source's average rate), upright
(rotation applied, no display matrix) and silent. Each file is written to a temp name in its final folder
and renamed into place, so an existing output is always complete and a re-run skips it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import glob
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from types import SimpleNamespace

from rs3d.data.annotations import VideoRecord, is_kinetics_csv
from rs3d.data.decoders import VideoDecodeError, VideoInfo, probe_video
from rs3d.data.decoders.base import first_line, rotate
from rs3d.data.prep.pool import run_in_pool
from rs3d.data.splits import read_class_names
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_copy, atomic_path, atomic_write_text

# Containers that hold H.264 by extension; any other name gets MP4 bytes (readers sniff the content).
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_COLOR_TAGS = ("colorspace", "color_range", "color_primaries", "color_trc")


@dataclass
class PrepareResult:
    """Outcome for one source video: ``done``, ``skipped`` (output exists) or ``failed`` (with the reason)."""

    src: str
    dst: str
    status: str
    reason: str = ""
    summary: dict = field(default_factory=dict)


def output_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Displayed (H, W) with the short side scaled to ``short_side`` (never up), both even for yuv420p."""
    scale = min(1.0, short_side / min(height, width))
    return _even(height * scale), _even(width * scale)


def reencode_video(src: str, dst: str, short_side: int = 256, keyframe_interval: int = 16, crf: int = 23,
                   preset: str = "veryfast", tune: str | None = "fastdecode",
                   skippable_odd_frames: bool = True) -> dict:
    """Write ``src`` as H.264/yuv420p to ``dst`` (atomically); returns frames, sizes, bytes and seconds taken.

    ``skippable_odd_frames`` (needs an even ``keyframe_interval``) makes every odd frame a non-reference
    B-frame: 32x2 clips then decode ~38 instead of ~72 frames, for ~8% more bytes than x264's adaptive
    B-frames (and +0.2 dB PSNR), measured on tools/benchmark_data.py's videos.

    ``tune="fastdecode"`` (x264's tuning for cheap decoding: CAVLC instead of CABAC, no deblocking filter, no
    weighted prediction) made random 32x2 clips decode ~1.4x faster again on 256p copies, for ~6% more bytes and
    the same PSNR against the source (35.97 vs 36.00 dB at CRF 23, measured on tools/benchmark_data.py's videos).
    """
    import av

    if skippable_odd_frames and keyframe_interval % 2:
        raise ValueError(f"keyframe interval {keyframe_interval} is odd: skippable odd frames need an even one")
    start = time.perf_counter()
    folder, name = os.path.split(paths.absolute(dst))
    if paths.is_local(dst):  # other handlers never see temporary files (atomic_path stages them locally)
        for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp*")):
            os.remove(stale)  # left by a killed run
    info = probe_video(src)  # VideoDecodeError for missing, empty, non-video and undecodable files
    height, width = output_size(info.height, info.width, short_side)
    stored = (width, height) if info.rotation in (90, 270) else (height, width)
    container_format = _FORMATS.get(os.path.splitext(name)[1].lower(), "mp4")
    frames = 0
    options = {"movflags": "+faststart"} if container_format in ("mp4", "mov") else {}
    reader = paths.reader_source(src)
    with atomic_path(dst, fsync=False) as tmp, contextlib.nullcontext() if isinstance(reader, str) else reader:
        with av.open(reader) as source, av.open(tmp, "w", format=container_format, options=options) as target:
            video = source.streams.video[0]
            video.thread_count = 1  # the pool parallelises over videos
            rate = video.average_rate or video.guessed_rate or Fraction(info.fps or 30).limit_denominator(1001)
            stream = target.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.gop_size, stream.thread_count = keyframe_interval, 1
            params = f"keyint={keyframe_interval}:min-keyint={keyframe_interval}:scenecut=0"
            if skippable_odd_frames:  # I B P B P ... P: the odd frames are B-frames that nothing refers to
                params += ":bframes=1:b-adapt=0:b-pyramid=none:open-gop=0"
            options = {"crf": str(crf), "preset": preset, "x264-params": params}
            if tune:
                options["tune"] = tune
            stream.codec_context.options = options
            if not info.rotation:  # YUV is copied as is, so its colour tags still apply
                for tag in _COLOR_TAGS:
                    setattr(stream.codec_context, tag, getattr(video.codec_context, tag))
            for frame in source.decode(video):
                out = _convert(frame, stored, info.rotation)
                out.pts, out.time_base = frames, 1 / Fraction(rate)  # constant frame rate
                out.pict_type = 0  # libx264 obeys a frame's type (I/P/B): the source's must not leak into ours
                target.mux(stream.encode(out))
                frames += 1
            target.mux(stream.encode())
        if not frames:
            raise VideoDecodeError(src, "no frame could be decoded")
    return {"src": src, "dst": dst, "frames": frames, "declared_frames": info.num_frames, "fps": float(rate),
            "height": height, "width": width, "src_height": info.height, "src_width": info.width,
            "rotation": info.rotation, "src_bytes": _size(src), "dst_bytes": _size(dst),
            "seconds": round(time.perf_counter() - start, 3)}


def prepare_split(sources: Sequence[VideoRecord | str], src_root: str, dst_root: str, short_side: int = 256,
                  keyframe_interval: int = 16, workers: int | None = None, crf: int = 23, preset: str = "veryfast",
                  progress: Callable[[int, int, PrepareResult], None] | None = None,
                  tune: str | None = "fastdecode", skippable_odd_frames: bool = True) -> list[PrepareResult]:
    """Re-encode each source to its relative path under ``dst_root`` in worker processes, skipping existing
    outputs (so an interrupted run resumes); results in input order, failures carry their reason."""
    results: list[PrepareResult | None] = []
    jobs: dict[tuple[str, str], list[int]] = {}  # (src, dst) -> result slots; a video listed twice is encoded once
    for source in sources:
        src = source.path if isinstance(source, VideoRecord) else str(source)
        rel = paths.relative(paths.absolute(src), paths.absolute(src_root))
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or rel == paths.absolute(src):
            results.append(PrepareResult(src, "", "failed", f"not under the source folder {src_root}"))
            continue
        dst = os.path.join(dst_root, rel)
        if paths.exists(dst):
            results.append(PrepareResult(src, dst, "skipped"))
            continue
        jobs.setdefault((src, dst), []).append(len(results))
        results.append(None)
    encode = functools.partial(_encode, short_side=short_side, keyframe_interval=keyframe_interval, crf=crf,
                               preset=preset, tune=tune, skippable_odd_frames=skippable_odd_frames)
    outcomes = run_in_pool(encode, list(jobs), workers, progress=progress,
                           on_failure=lambda item, reason: PrepareResult(item[0], item[1], "failed", reason))
    for slots, outcome in zip(jobs.values(), outcomes):
        for slot in slots:
            results[slot] = outcome
    return results


def probe_outputs(results: Sequence[PrepareResult], workers: int | None = None) -> list[SimpleNamespace]:
    """Stream facts (``path`` plus :class:`VideoInfo` fields) of every finished output, probed in worker processes,
    for :func:`rs3d.data.metadata.save_metadata`: the loaders then skip their per-video probe."""
    outputs = [r.dst for r in results if r.status != "failed"]
    infos = run_in_pool(_probe_or_none, outputs, workers)
    return [SimpleNamespace(path=path, **dataclasses.asdict(info)) for path, info in zip(outputs, infos) if info]


def _probe_or_none(path: str) -> VideoInfo | None:
    """Pool task: the facts of one output, None if it cannot be read."""
    try:
        return probe_video(path)
    except VideoDecodeError:
        return None


def copy_class_names(src_dir: str, dst_dir: str) -> str | None:
    """Write dst_dir/classnames.json: src_dir's copy, else the official Kinetics labels (so dropping failed
    lines from a CSV never shifts the label indexing); None when there is neither."""
    src, dst = os.path.join(src_dir, "classnames.json"), os.path.join(dst_dir, "classnames.json")
    if paths.isfile(src):
        atomic_copy(src, dst)
        return dst
    csvs = [os.path.join(src_dir, f"{split}.csv") for split in ("train", "val", "test")]
    kinetics = [path for path in csvs if paths.isfile(path) and is_kinetics_csv(path)]
    if not kinetics:
        return None
    atomic_write_text(dst, json.dumps(read_class_names(src_dir, fallback_csv=kinetics[0])[0], indent=1) + "\n")
    return dst


def _size(path: str) -> int | None:
    """Bytes of a local file; None elsewhere (iopath has no size query)."""
    return os.path.getsize(path) if paths.is_local(path) else None


def _encode(item: tuple[str, str], **kwargs) -> PrepareResult:
    """Pool task: one video, every error turned into a failed result."""
    src, dst = item
    try:
        return PrepareResult(src, dst, "done", summary=reencode_video(src, dst, **kwargs))
    except VideoDecodeError as exc:
        return PrepareResult(src, dst, "failed", exc.reason)
    except Exception as exc:  # noqa: BLE001 - PyAV errors on damaged packets, disk full, ...
        return PrepareResult(src, dst, "failed", f"{type(exc).__name__}: {first_line(exc)}")


def _convert(frame, stored: tuple[int, int], rotation: int):
    """Resize (area filter) to the stored (H, W) and rotate upright if needed."""
    import av

    if rotation:
        array = frame.to_ndarray(format="rgb24", height=stored[0], width=stored[1], interpolation="AREA")
        return av.VideoFrame.from_ndarray(rotate(array[None], rotation)[0], format="rgb24")
    return frame.reformat(width=stored[1], height=stored[0], format="yuv420p", interpolation="AREA")


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))
