"""An embedded toy video dataset whose 8 classes differ ONLY in motion, for quick end-to-end training checks.

Classes come in time-reversal pairs: move_left/move_right, move_up/move_down, rotate_clockwise/anticlockwise,
grow/shrink. Every clip shows a full-frame procedural texture (a random sum of plane waves pushed through a
random ``tanh`` contrast curve, which gives soft clouds or hard-edged blobs in random colours) that is panned,
rotated or zoomed about a point near the frame centre, plus per-pixel noise.

Why an order-agnostic model must fail:

* The texture is a continuous function, not a cropped image, so motion never runs off an edge. Its wave phases
  are uniform (panning only shifts phases), its wave directions uniform (rotation only turns directions), and
  its wave scales uniform on a *wrapped* log-frequency axis under a fixed bell-shaped weight (a "Shepard zoom":
  zooming slides waves along that axis, fading out at one end and back in at the other). Hence every single
  frame of every class has exactly the same distribution, and a per-frame / bag-of-frames model sits at chance.
* Motion is parametrised symmetrically about the middle frame with the same draws for both classes in a pair,
  so the time-reversed clip of class 2k *is* a clip of class 2k+1 (up to the independent pixel noise). A model
  that ignores frame order cannot separate a pair; only a temporal model that reads the motion direction can.

So a per-frame model is at chance, 1/8 (per-frame features averaged over time stay near it); even a model comparing
frames as an unordered set can at best name the kind of motion (pan axis, rotation, zoom), i.e. 1/4. A tiny
3D CNN learns all 8 classes in minutes on a CPU (tests/data/test_toy_dataset.py checks both sides with simple features).

Speeds scale with the short side. At the defaults (160x120) a pan moves 0.6-1.5 px per frame, i.e. 2.4-6 px
between frames sampled with stride 4, well under half the dominant texture period (about 32 px); rotations turn
0.6-1.5 degrees and zooms 1.5-3.5 percent per frame, so the motion stays clearly visible and alias-free.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from rs3d.data.prep.pool import pool_context
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_path, atomic_write_text, upload_tree
from rs3d.utils.video_writer import write_h264

TOY_CLASSES: tuple[str, ...] = ("move_left", "move_right", "move_up", "move_down",
                                "rotate_clockwise", "rotate_anticlockwise", "grow", "shrink")
SPLITS: tuple[str, ...] = ("train", "val", "test")
FORMAT_VERSION = 1
_WAVES = 64  # plane waves per clip
_OCTAVES = 4.0  # length of the wrapped log2-period axis
_SIGMA = 0.6  # width (octaves) of the bell-shaped weight on that axis
_MIN_PERIOD = 0.067  # shortest wave period, as a fraction of the short side (the dominant one is 4x longer)


@functools.cache
def _blas_thread_setter() -> Callable[[int], int] | None:
    """numpy's OpenBLAS ``openblas_set_num_threads_local`` (0.3.27+; returns the old value), or None."""
    try:
        with open("/proc/self/maps") as maps:  # Linux; elsewhere matmuls just keep their default threads
            fields = [line.split(None, 5) for line in maps if "openblas" in line.lower()]
        paths = sorted({f[5].strip() for f in fields if len(f) == 6 and ".so" in f[5]})
        for path in paths:
            setter = getattr(ctypes.CDLL(path), "openblas_set_num_threads_local", None)
            if setter is not None:
                return setter
    except OSError:
        pass
    return None


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run this thread's matmuls on one BLAS thread: they are small, and spinning BLAS helpers fight parallel
    workers (and anything else) for the cores; measured 4-13x slower on a busy 2-core machine."""
    setter = _blas_thread_setter()
    previous = setter(1) if setter is not None else None
    try:
        yield
    finally:
        if setter is not None:
            setter(previous)


def render_toy_clip(label: int, rng: np.random.Generator, num_frames: int = 48, height: int = 120,
                    width: int = 160) -> np.ndarray:
    """Render one (T, H, W, 3) uint8 clip of class ``label``; every draw but the label is class-independent."""
    if not 0 <= label < len(TOY_CLASSES):
        raise ValueError(f"label must be in [0, {len(TOY_CLASSES)}), got {label}")
    short = min(height, width)
    # Texture: wave log-periods, directions, phases, colour mixing; then look, noise, motion, centre.
    level = rng.uniform(0.0, _OCTAVES, _WAVES)
    angle = rng.uniform(0.0, 2 * np.pi, _WAVES)
    phase = rng.uniform(0.0, 2 * np.pi, _WAVES)
    colour = 1.0 + 0.35 * rng.standard_normal((_WAVES, 3))  # mostly luminance: chroma survives yuv420p
    gain = np.exp(rng.uniform(np.log(0.8), np.log(4.0)))
    base = rng.uniform(70.0, 185.0, 3)
    contrast = rng.uniform(45.0, 70.0, 3)
    noise_std = rng.uniform(1.0, 6.0)
    speed = rng.uniform(0.005, 0.0125) * short  # pixels per frame
    spin = np.deg2rad(rng.uniform(0.6, 1.5))  # radians per frame
    zoom = np.log2(rng.uniform(1.015, 1.035))  # octaves per frame
    centre = np.array([width, height]) / 2 + rng.uniform(-0.1, 0.1, 2) * short

    # Motion, symmetric about the middle frame so that reversing time flips the sign of every rate.
    sign = 1.0 if label % 2 else -1.0  # -1: left/up/clockwise/grow, +1: right/down/anticlockwise/shrink
    kind = label // 2
    s = np.arange(num_frames) - (num_frames - 1) / 2
    shift = np.zeros((num_frames, 2))  # content displacement (x, y) in pixels; y points down
    theta = np.zeros(num_frames)  # content rotation; positive turns +x towards +y, i.e. clockwise on screen
    levels = np.zeros(num_frames)  # log2 magnification
    if kind == 0:
        shift[:, 0] = sign * speed * s
    elif kind == 1:
        shift[:, 1] = sign * speed * s
    elif kind == 2:
        theta = -sign * spin * s
    else:
        levels = -sign * zoom * s

    # Per-frame waves: magnification slides log-periods along the wrapped axis (Shepard zoom), rotation turns
    # wave directions, a pan shifts phases. The field is sum_m amp*colour*cos(kx*x + ky*y + psi).
    lv = np.mod(level[None] + levels[:, None], _OCTAVES)  # (T, M)
    amp = np.exp(-0.5 * ((lv - _OCTAVES / 2) / _SIGMA) ** 2)
    freq = 2 * np.pi / (_MIN_PERIOD * short * 2.0 ** lv)
    direction = angle[None] + theta[:, None]
    kx, ky = freq * np.cos(direction), freq * np.sin(direction)
    psi = phase[None] - kx * shift[:, :1] - ky * shift[:, 1:]
    x = np.arange(width) - centre[0]
    y = np.arange(height) - centre[1]
    mix = np.concatenate([colour, colour]).T.astype(np.float32)  # (3, 2M)
    scale = (gain / np.sqrt(0.5 * amp ** 2 @ colour ** 2)).astype(np.float32)  # (T, 3): gain / field std
    video = np.empty((num_frames, height, width, 3), np.uint8)
    with _one_blas_thread():
        for t in range(0, num_frames, 8):  # chunks of 8 frames keep the temporaries small
            c = slice(t, t + 8)
            # cos(a + b) = cos a cos b - sin a sin b turns the sum over waves into one real batched matmul.
            row_arg = (ky[c, None, :] * y[None, :, None] + psi[c, None, :]).astype(np.float32)  # (t, H, M)
            col_arg = (kx[c, :, None] * x[None, None, :]).astype(np.float32)  # (t, M, W)
            a = amp[c, None, :].astype(np.float32)
            left = np.concatenate([a * np.cos(row_arg), -a * np.sin(row_arg)], axis=2)  # (t, H, 2M)
            right = np.concatenate([np.cos(col_arg), np.sin(col_arg)], axis=1)  # (t, 2M, W)
            left = (left[:, None] * mix[None, :, None]).reshape(len(left), 3 * height, 2 * _WAVES)
            field = np.matmul(left, right).reshape(len(left), 3, height, width)
            field *= scale[c, :, None, None]
            np.tanh(field, out=field)
            field *= contrast.astype(np.float32)[:, None, None]
            field += base.astype(np.float32)[:, None, None]
            noise = rng.random(field.shape, dtype=np.float32)
            noise -= 0.5
            noise *= noise_std * 12 ** 0.5  # uniform noise with standard deviation noise_std
            field += noise
            video[c] = np.clip(np.rint(field, out=field), 0, 255, out=field).astype(np.uint8).transpose(0, 2, 3, 1)
    return video


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 30) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as a toy H.264 mp4, atomically. One thread (the dataset
    parallelises over videos) and x264's macroblock-tree rate control off, so the same frames give the same bytes."""
    write_h264(path, frames, fps, crf=18, preset="veryfast", threads=1, x264_params="mbtree=0")


def _params(*, train_per_class: int = 40, val_per_class: int = 10, test_per_class: int = 10,
            num_frames: int = 48, height: int = 120, width: int = 160, fps: int = 30, seed: int = 0) -> dict:
    """Everything that determines the dataset's bytes (recorded in the marker to detect stale datasets)."""
    return {"version": FORMAT_VERSION, "classes": list(TOY_CLASSES), "train_per_class": train_per_class,
            "val_per_class": val_per_class, "test_per_class": test_per_class, "num_frames": num_frames,
            "height": height, "width": width, "fps": fps, "seed": seed}


def _make_one(job: tuple) -> None:
    """Render and write one video; seeded from (seed, split, label, index) so any worker order gives the same."""
    path, seed, split_id, label, index, num_frames, height, width, fps = job
    rng = np.random.default_rng([seed, split_id, label, index])
    write_video(path, render_toy_clip(label, rng, num_frames, height, width), fps)


def generate_toy_dataset(root: str | os.PathLike, *, train_per_class: int = 40, val_per_class: int = 10,
                         test_per_class: int = 10, num_frames: int = 48, height: int = 120, width: int = 160,
                         fps: int = 30, seed: int = 0, workers: int | None = None) -> dict:
    """(Re)generate the dataset under ``root`` in PySlowFast/Kinetics layout; returns counts, bytes and seconds.

    ``root`` may be on any iopath handler: the dataset is then generated in a local folder and uploaded, the
    ``.complete`` marker last."""
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs an even frame size, got {width}x{height}")
    if not paths.is_local(os.fspath(root)):
        return _generate_and_upload(os.fspath(root), train_per_class=train_per_class, val_per_class=val_per_class,
                                    test_per_class=test_per_class, num_frames=num_frames, height=height,
                                    width=width, fps=fps, seed=seed, workers=workers)
    start = time.perf_counter()
    params = _params(train_per_class=train_per_class, val_per_class=val_per_class, test_per_class=test_per_class,
                     num_frames=num_frames, height=height, width=width, fps=fps, seed=seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / ".complete").unlink(missing_ok=True)  # an interrupted run leaves no marker, so it is redone
    for stale in root.glob(".videos.*.tmp"):  # left by a run killed mid-way
        shutil.rmtree(stale, ignore_errors=True)
    rows: dict[str, list[str]] = {split: [] for split in SPLITS}
    with atomic_path(root / "videos", fsync=False) as staging_name:  # the whole folder appears in one rename
        staging = Path(staging_name)
        jobs = []
        for split_id, split in enumerate(SPLITS):
            for label, name in enumerate(TOY_CLASSES):
                for index in range(params[f"{split}_per_class"]):
                    rel = f"videos/{split}/{name}/{name}_{index:05d}.mp4"
                    rows[split].append(f"{rel} {label}\n")
                    jobs.append((staging / rel.split("/", 1)[1], seed, split_id, label, index,
                                 num_frames, height, width, fps))
        workers = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
        if workers > 1:
            # forkserver, not fork: a fork copies whatever locks the parent's threads hold (TensorBoard writers,
            # OpenMP, logging), which hung the pool in a long-lived process.
            with pool_context().Pool(workers) as pool:
                pool.map(_make_one, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
        else:
            for job in jobs:
                _make_one(job)
        staging.mkdir(exist_ok=True)
    for split in SPLITS:
        atomic_write_text(root / f"{split}.csv", "".join(rows[split]))
    atomic_write_text(root / "classnames.json", json.dumps({n: i for i, n in enumerate(TOY_CLASSES)}, indent=1) + "\n")
    atomic_write_text(root / ".complete", json.dumps(params, indent=1) + "\n")  # last: marks the dataset complete
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in (root / "videos").rglob("*.mp4"))
    return {"root": str(root), "counts": {split: len(rows[split]) for split in SPLITS}, "videos": len(jobs),
            "bytes": size, "workers": workers, "seconds": round(seconds, 2)}


def _generate_and_upload(root: str, **kwargs) -> dict:
    """Generate the dataset in a local folder, then copy it to ``root`` on its handler, ``.complete`` last."""
    with tempfile.TemporaryDirectory(prefix="rs3d-toy-") as staging:  # local by design: the upload's source
        summary = generate_toy_dataset(staging, **kwargs)
        marker = os.path.join(staging, ".complete")
        complete = Path(marker).read_text()
        os.remove(marker)
        target_marker = os.path.join(root, ".complete")
        if paths.exists(target_marker) and paths.isfile(target_marker):
            paths.remove(target_marker)  # an interrupted upload leaves no marker, so it is redone
        upload_tree(staging, root)
        atomic_write_text(target_marker, complete)
    return {**summary, "root": root}


def ensure_toy_dataset(root: str | os.PathLike, **kwargs) -> bool:
    """Generate the dataset unless ``root/.complete`` records the same parameters; True if it generated."""
    marker = os.path.join(os.fspath(root), ".complete")  # not Path(): it would turn s3://x into s3:/x
    wanted = _params(**{k: v for k, v in kwargs.items() if k != "workers"})
    try:
        if paths.isfile(marker) and json.loads(paths.read_text(marker)) == wanted:
            return False
    except (OSError, ValueError):
        pass
    generate_toy_dataset(root, **kwargs)
    return True

