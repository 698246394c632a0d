"""Shared test helpers: the repository root, tiny toy-run configs, small H.264 videos written with PyAV, trained toy models."""
from __future__ import annotations

import os
import sys

import av
import numpy as np
import pytest
import torch

from rs3d.config import load_config
from rs3d.utils.video_writer import write_h264  # noqa: F401  (tests import it from here)

# The repository root (tests live one folder below tests/, mirroring rs3d/'s packages).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = REPO_ROOT
# Overrides that make configs/toy/rs3d_tiny.yaml tiny enough for many short CPU training runs.
TINY = ["DATA.NUM_FRAMES", "4", "DATA.SAMPLING_RATE", "3", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
        "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.125", "MODEL.RESNET3D.STEM_WIDTH", "8", "TRAIN.BATCH_SIZE", "8",
        "TRAIN.EVAL_PERIOD", "1", "TRAIN.LOG_PERIOD", "2", "DATA.TOY_DATASET", "False", "TEST.NUM_ENSEMBLE_VIEWS", "2",
        "TEST.BATCH_SIZE", "4", "DATA_LOADER.NUM_WORKERS", "0", "TRAIN.DETERMINISTIC", "True", "SOLVER.EMA_DECAY",
        "0.9"]


def tiny_cfg(toy_dir, out, *opts):
    return load_config(os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml"),
                       TINY + ["DATA.PATH_TO_DATA_DIR", toy_dir, "OUTPUT_DIR", str(out), *opts])


def train_cmd(toy_dir, out, *opts):
    return [sys.executable, os.path.join(ROOT, "tools/train_net.py"), "--cfg",
            os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml"), *TINY, "DATA.PATH_TO_DATA_DIR", toy_dir,
            "OUTPUT_DIR", str(out), "TEST.ENABLE", "False", *opts]


def moving_frames(num_frames: int = 60, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random texture panning right, plus a frame-number stripe, so every frame differs."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 4 + 1, (width + num_frames) // 4 + 2, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(base, 4, axis=0), 4, axis=1)
    frames = np.stack([big[:height, t:t + width] for t in range(num_frames)]).copy()
    frames[:, :4, :, :] = (np.arange(num_frames) * 4 % 256).astype(np.uint8)[:, None, None, None]
    return frames


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN everywhere, in eval mode (timm zero-inits each block's last BN, which would hide mistakes)."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.2, 0.6)
            module.bias.data.normal_(0, 0.05)
            module.running_mean.normal_(0, 0.05)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def write_audio_only(path: str) -> str:
    """An mp4 holding one AAC audio stream and no video."""
    with av.open(path, "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.linspace(0, 200, 16000)) * 0.3).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> dict[str, str]:
    """Good and bad videos, by kind, generated once per test session."""
    root = tmp_path_factory.mktemp("videos")
    paths = {}
    frames = moving_frames(60)
    paths["good"] = write_h264(str(root / "good.mp4"), frames)
    paths["good2"] = write_h264(str(root / "good2.mp4"), moving_frames(45, seed=1), gop=8)
    paths["short"] = write_h264(str(root / "short.mp4"), moving_frames(10, seed=2))
    paths["fps15"] = write_h264(str(root / "fps15.mp4"), moving_frames(30, seed=3), fps=15)
    paths["portrait"] = write_h264(str(root / "portrait.mp4"), moving_frames(20, 64, 40, seed=4))
    paths["rotated"] = write_h264(str(root / "rotated.mp4"), moving_frames(20, seed=5), rotation=90)
    faststart = write_h264(str(root / "faststart.mp4"), moving_frames(90, seed=6), faststart=True)
    data = open(faststart, "rb").read()
    paths["truncated_faststart"] = str(root / "truncated_faststart.mp4")
    open(paths["truncated_faststart"], "wb").write(data[: len(data) * 2 // 3])
    data = open(paths["good"], "rb").read()
    paths["truncated"] = str(root / "truncated.mp4")
    open(paths["truncated"], "wb").write(data[: len(data) // 2])
    damaged = bytearray(data)
    rng = np.random.default_rng(0)
    start = len(data) // 3
    damaged[start:start + len(data) // 3] = rng.integers(0, 256, len(data) // 3, dtype=np.uint8).tobytes()
    paths["damaged"] = str(root / "damaged.mp4")
    open(paths["damaged"], "wb").write(bytes(damaged))
    paths["empty"] = str(root / "empty.mp4")
    open(paths["empty"], "wb").close()
    paths["text"] = str(root / "text.mp4")
    open(paths["text"], "w").write("this is not a video\n" * 20)
    paths["audio_only"] = write_audio_only(str(root / "audio.mp4"))
    paths["missing"] = str(root / "missing.mp4")
    assert not os.path.exists(paths["missing"])
    return paths


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory) -> str:
    """A very small toy dataset (24 train, 8 val, 8 test videos of 16 frames at 64x48), shared read-only by the
    training, fault and preemption tests."""
    from rs3d.data.prep.toy import generate_toy_dataset

    root = tmp_path_factory.mktemp("toy")
    generate_toy_dataset(root, train_per_class=3, val_per_class=1, test_per_class=1, num_frames=16, height=48,
                         width=64, workers=2)
    return str(root)


@pytest.fixture(scope="session")
def trained_toy(tmp_path_factory) -> dict:
    """A tiny RS3D trained on a small toy dataset (~45 s on 2 CPU cores), shared by training and inference tests."""
    from rs3d.config import load_config
    from rs3d.data.prep.toy import generate_toy_dataset
    from rs3d.engine import Trainer
    from rs3d.evaluation import run_test

    root = tmp_path_factory.mktemp("trained_toy")
    data, out = root / "toy", root / "run"
    generate_toy_dataset(data, train_per_class=16, val_per_class=4, test_per_class=1, num_frames=32, workers=2)
    repo = REPO_ROOT
    cfg = load_config(os.path.join(repo, "configs/toy/rs3d_tiny.yaml"),
                      ["DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(out), "SOLVER.MAX_EPOCH", "12",
                       "TRAIN.BATCH_SIZE", "8", "TRAIN.EVAL_PERIOD", "12", "TRAIN.LOG_PERIOD", "50",
                       "DATA.TOY_DATASET", "False"])
    trainer = Trainer(cfg)
    summary = trainer.train()
    test = run_test(cfg, trainer.export_model(), trainer.class_names, trainer.dist, None)
    trainer.monitor.close()
    return {"data": str(data), "out": str(out), "summary": summary, "test": test, "cfg": cfg}


def pytest_collection_modifyitems(config, items):
    """Tests that need the session-trained model are slow (it trains for ~45 s); `gpu` tests skip without CUDA."""
    import torch

    no_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "trained_toy" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_cuda)
