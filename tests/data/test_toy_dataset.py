"""The embedded toy dataset: layout and markers, faithful H.264 files, and classes told apart only by motion."""

import json

import av
import numpy as np
import pytest

from rs3d.data.prep.toy import (
    TOY_CLASSES,
    ensure_toy_dataset,
    generate_toy_dataset,
    render_toy_clip,
    write_video,
)

TINY = {"train_per_class": 2, "val_per_class": 2, "test_per_class": 2, "num_frames": 16, "height": 48, "width": 64}


def decode(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def clip(label: int, seed: int, num_frames: int = 16, height: int = 72, width: int = 96) -> np.ndarray:
    return render_toy_clip(label, np.random.default_rng(seed), num_frames, height, width)


def grey(video: np.ndarray) -> np.ndarray:
    return video.astype(np.float64).mean(axis=-1)


def phase_shift(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """(dx, dy) such that grey frame b is a shifted by (dx, dy), by phase correlation."""
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa, fb = np.fft.fft2((a - a.mean()) * window), np.fft.fft2((b - b.mean()) * window)
    cross = fb * np.conj(fa)
    corr = np.fft.ifft2(cross / (np.abs(cross) + 1e-9)).real
    dy, dx = np.unravel_index(np.argmax(corr), corr.shape)
    return (dx if dx <= a.shape[1] // 2 else dx - a.shape[1]), (dy if dy <= a.shape[0] // 2 else dy - a.shape[0])


def frame_features(video: np.ndarray) -> np.ndarray:
    """Order-agnostic: per-frame colour and gradient-orientation histograms, averaged over frames."""
    colour = [np.bincount(video[..., c].ravel() >> 5, minlength=8) / video[..., c].size for c in range(3)]
    g = grey(video)
    gy, gx = np.gradient(g, axis=(1, 2))
    bins = ((np.arctan2(gy, gx) + np.pi) / (2 * np.pi) * 8).astype(int).clip(0, 7)
    orientation = np.bincount(bins.ravel(), weights=np.hypot(gx, gy).ravel(), minlength=8)
    return np.concatenate(colour + [orientation / orientation.sum(), [g.mean() / 255, g.std() / 255]])


def motion_features(video: np.ndarray) -> np.ndarray:
    """Order-aware: least-squares affine optical flow between consecutive frames -> shift x/y, divergence, curl."""
    g = grey(video)
    mid, dt = (g[1:] + g[:-1]) / 2, g[1:] - g[:-1]
    gy, gx = np.gradient(mid, axis=(1, 2))
    y, x = np.mgrid[: g.shape[1], : g.shape[2]]
    x, y = x - x.mean(), y - y.mean()
    design = np.stack([gx, gx * x, gx * y, gy, gy * x, gy * y], -1).reshape(len(dt), -1, 6)
    transposed = design.transpose(0, 2, 1)
    a = np.linalg.solve(transposed @ design, -transposed @ dt.reshape(len(dt), -1, 1))[..., 0]
    return np.stack([a[:, 0], a[:, 3], a[:, 1] + a[:, 5], a[:, 4] - a[:, 2]], -1).mean(0)


def nearest_centroid_accuracy(features, labels, train_per_class: int) -> float:
    features, labels = np.asarray(features), np.asarray(labels)
    index = np.arange(len(labels)) % (len(labels) // len(TOY_CLASSES))
    train, test = index < train_per_class, index >= train_per_class
    mean, std = features[train].mean(0), features[train].std(0) + 1e-9
    z = (features - mean) / std
    centroids = np.stack([z[train & (labels == k)].mean(0) for k in range(len(TOY_CLASSES))])
    predicted = np.argmin(((z[test, None] - centroids[None]) ** 2).sum(-1), axis=1)
    return float((predicted == labels[test]).mean())


def test_render_shape_determinism_and_arguments():
    a, b = clip(3, seed=7), clip(3, seed=7)
    assert a.shape == (16, 72, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, clip(3, seed=8))
    with pytest.raises(ValueError):
        clip(len(TOY_CLASSES), seed=0)


def test_write_video_round_trip(tmp_path):
    frames = render_toy_clip(6, np.random.default_rng(0), 24, 120, 160)
    path = tmp_path / "sub" / "clip.mp4"
    write_video(path, frames, fps=30)
    decoded = decode(path)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(float) - frames).mean() < 8  # lossy: noise, 4:2:0 chroma
    assert np.abs(grey(decoded) - grey(frames)).mean() < 5
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.average_rate == 30
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temp file left behind


def test_generate_layout_markers_and_determinism(tmp_path):
    root = tmp_path / "toy"
    summary = generate_toy_dataset(root, seed=3, workers=2, **TINY)
    assert summary["counts"] == {"train": 16, "val": 16, "test": 16} and summary["videos"] == 48
    assert json.loads((root / "classnames.json").read_text()) == {n: i for i, n in enumerate(TOY_CLASSES)}
    assert json.loads((root / ".complete").read_text())["seed"] == 3
    for split in ("train", "val", "test"):
        lines = (root / f"{split}.csv").read_text().splitlines()
        assert len(lines) == 16
        for line in lines:
            rel, label = line.split(" ")
            assert (root / rel).is_file() and 0 <= int(label) < len(TOY_CLASSES)
            assert rel.startswith(f"videos/{split}/{TOY_CLASSES[int(label)]}/{TOY_CLASSES[int(label)]}_0000")
    video = decode(root / "videos/val/grow/grow_00001.mp4")
    assert video.shape == (16, 48, 64, 3)
    assert not list(root.rglob(".*.tmp*"))

    serial = tmp_path / "serial"
    generate_toy_dataset(serial, seed=3, workers=1, **TINY)  # the worker count must not change a single byte
    for path in (root / "videos").rglob("*.mp4"):
        assert path.read_bytes() == (serial / path.relative_to(root)).read_bytes(), path

    assert ensure_toy_dataset(root, seed=3, workers=1, **TINY) is False
    (root / ".complete").unlink()  # as if interrupted before the end
    assert ensure_toy_dataset(root, seed=3, workers=1, **TINY) is True
    assert ensure_toy_dataset(root, seed=4, workers=1, **TINY) is True  # other parameters -> regenerate
    assert json.loads((root / ".complete").read_text())["seed"] == 4


def pooled(video: np.ndarray, k: int = 4) -> np.ndarray:
    t, h, w, c = video.shape
    return video.reshape(t, h // k, k, w // k, k, c).astype(np.float64).mean(axis=(2, 4))


@pytest.mark.parametrize("pair", range(4))
def test_reversed_clip_is_the_partner_class(pair):
    # Same draws, reversed time: class 2k becomes class 2k+1 up to the independent pixel noise (pooled away).
    for seed in range(3):
        forward, partner = pooled(clip(2 * pair, seed)), pooled(clip(2 * pair + 1, seed))
        assert np.abs(forward[::-1] - partner).mean() < 2.5
        assert np.abs(forward - partner).mean() > 10


def test_pan_direction_by_phase_correlation():
    for seed in range(4):
        left, right = grey(clip(0, seed, 32)), grey(clip(1, seed, 32))
        up, down = grey(clip(2, seed, 32)), grey(clip(3, seed, 32))
        dx_left, dy_left = phase_shift(left[0], left[-1])
        assert dx_left <= -3 and abs(dy_left) <= 1
        assert phase_shift(right[0], right[-1])[0] >= 3
        assert phase_shift(left[-1], left[0])[0] >= 3  # time-reversed move_left moves right
        dx_up, dy_up = phase_shift(up[0], up[-1])
        assert dy_up <= -3 and abs(dx_up) <= 1
        assert phase_shift(down[0], down[-1])[1] >= 3


def test_rotation_and_zoom_senses_by_affine_flow():
    # Screen coordinates (y down): clockwise turning has positive curl, growing positive divergence.
    for seed in range(3):
        cw, acw, grow, shrink = (motion_features(clip(label, seed)) for label in (4, 5, 6, 7))
        assert cw[3] > 0 > acw[3] and motion_features(clip(4, seed)[::-1])[3] < 0
        assert grow[2] > 0 > shrink[2] and motion_features(clip(6, seed)[::-1])[2] < 0
        assert abs(cw[2]) < cw[3] / 3 and abs(grow[3]) < grow[2] / 3


@pytest.mark.slow
def test_only_frame_order_tells_classes_apart():
    per_class, train_per_class = 40, 30
    videos = [(clip(label, 1000 * label + i), label) for label in range(len(TOY_CLASSES)) for i in range(per_class)]
    labels = [label for _, label in videos]
    bag = nearest_centroid_accuracy([frame_features(v) for v, _ in videos], labels, train_per_class)
    motion = nearest_centroid_accuracy([motion_features(v) for v, _ in videos], labels, train_per_class)
    print(f"nearest-centroid accuracy: bag of frames {bag:.3f}, affine motion {motion:.3f} (chance 0.125)")
    assert bag < 0.3
    assert motion > 0.9
