"""The benchmark's videos: generated Kinetics-like originals (long GOP, as stored) and their copies prepared as
``rs3d-prepare-data`` writes them, reused when present."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from rs3d.utils.video_writer import write_h264


def textured_video(seed: int, num_frames: int = 300, height: int = 256, width: int = 340) -> np.ndarray:
    """(T, H, W, 3) uint8 frames: a random 1/f colour texture panned, zoomed and turned, plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    canvas_h, canvas_w = 3 * height, 3 * width
    fy, fx = np.fft.fftfreq(canvas_h)[:, None], np.fft.rfftfreq(canvas_w)[None]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    amplitude = radius ** -1.25  # close to natural-image statistics: detail at every scale
    amplitude[0, 0] = 0.0
    planes = [np.fft.irfft2(amplitude * rng.standard_normal(amplitude.shape)
                            * np.exp(2j * np.pi * rng.random(amplitude.shape)), s=(canvas_h, canvas_w))
              for _ in range(3)]
    mix = rng.normal(0.6, 0.4, (3, 3)) + 0.6 * np.eye(3)
    texture = np.einsum("ij,jhw->ihw", mix, np.stack(planes))
    texture = (texture - texture.mean(axis=(1, 2), keepdims=True)) / texture.std()
    texture = rng.uniform(80, 170, (3, 1, 1)) + 60 * np.tanh(texture * rng.uniform(0.7, 1.5))

    # Camera path in normalised canvas coordinates: a pan across about a third of the canvas, a slow zoom, a turn.
    t = np.arange(num_frames) / num_frames
    direction, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.5)
    zoom = np.exp(0.25 * np.sin(2 * np.pi * (t * rng.uniform(0.5, 1.5) + rng.random()))) / 3
    turn = rng.uniform(-0.3, 0.3) * t
    theta = np.zeros((num_frames, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 1] = zoom * np.cos(turn), -zoom * np.sin(turn) * height / width
    theta[:, 1, 0], theta[:, 1, 1] = zoom * np.sin(turn) * width / height, zoom * np.cos(turn)
    theta[:, 0, 2], theta[:, 1, 2] = speed * np.cos(direction) * (t - 0.5), speed * np.sin(direction) * (t - 0.5)

    source = torch.from_numpy(texture.astype(np.float32))[None]
    noise = torch.Generator().manual_seed(seed)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    for first in range(0, num_frames, 50):
        block = torch.from_numpy(theta[first:first + 50])
        grid = torch.nn.functional.affine_grid(block, [len(block), 3, height, width], align_corners=False)
        frames = torch.nn.functional.grid_sample(source.expand(len(block), -1, -1, -1), grid, align_corners=False)
        frames += 4.0 * torch.randn(frames.shape, generator=noise)
        out[first:first + 50] = frames.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def keyframe_count(path: str | os.PathLike) -> int:
    """Number of keyframes in the first video stream (demuxes packets, decodes nothing)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.is_keyframe and packet.size)


def ensure_videos(data_dir: str | os.PathLike, count: int, seconds: float = 10.0, height: int = 256,
                  width: int = 340, fps: int = 30, short_side: int = 256, keyframe_interval: int = 16,
                  tune: str | None = "fastdecode", skippable_odd_frames: bool = True,
                  log: Callable[[str], None] = print) -> tuple[list[str], list[str]]:
    """Originals ``data_dir/original/*.mp4`` (``count`` generated ``video_<i>_<W>x<H>.mp4``; 0 = every mp4 there)
    and their re-encoded copies ``data_dir/prepared_<short side>_k<keyframe interval>_<tune>[_skipodd]/*.mp4``
    (the defaults of prepare_dataset.py); existing files are reused."""
    from rs3d.data.prep.reencode import reencode_video

    original_dir = Path(data_dir) / "original"
    prepared_dir = Path(data_dir) / (f"prepared_{short_side}_k{keyframe_interval}_{tune or 'plain'}"
                                     + ("_skipodd" if skippable_odd_frames else ""))
    if count > 0:
        originals = [original_dir / f"video_{i:03d}_{width}x{height}.mp4" for i in range(count)]
        for i, path in enumerate(originals):
            if not path.is_file() or path.stat().st_size == 0:
                start = time.perf_counter()
                write_h264(path, textured_video(i, round(seconds * fps), height, width), fps)
                log(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    else:
        originals = sorted(original_dir.glob("*.mp4"))
        if not originals:
            raise FileNotFoundError(f"no videos in {original_dir}; generate some first")
    prepared = [prepared_dir / path.name for path in originals]
    for src, dst in zip(originals, prepared):
        if not dst.is_file() or dst.stat().st_size == 0:
            dst.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            reencode_video(str(src), str(dst), short_side=short_side, keyframe_interval=keyframe_interval, tune=tune,
                           skippable_odd_frames=skippable_odd_frames)
            log(f"re-encoded {dst} ({time.perf_counter() - start:.1f} s)")
    return [str(p) for p in originals], [str(p) for p in prepared]
