"""Extending rs3d from outside the package: this file is a user's module. It registers a toy backbone
(``@register_model``) and a toy decoding backend for videos stored as ``.npy`` frame arrays
(``@register_backend``), and a config names it in ``CUSTOM_IMPORTS``; ``rs3d-train`` and ``rs3d-predict`` then
train and predict with both by config alone, in fresh processes that know nothing else about them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from rs3d.data.decoders import Capabilities, VideoDecodeError, VideoInfo, register_backend
from rs3d.models import register_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NPY_FPS = 10.0


class ToyC3D(nn.Module):
    """A two-layer 3D conv net keeping the backbone contract: ``stem``, ``stages`` and an ``fc`` head."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 8, dropout_rate: float = 0.0):
        super().__init__()
        # BatchNorm with a cumulative average (momentum None): its statistics are right after a few steps
        self.stem = nn.Sequential(nn.Conv3d(in_channels, width, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
                                  nn.BatchNorm3d(width, momentum=None), nn.ReLU())
        self.stages = nn.Sequential(nn.Sequential(nn.Conv3d(width, 2 * width, 3, padding=1, bias=False),
                                                  nn.BatchNorm3d(2 * width, momentum=None), nn.ReLU()))
        self.dropout = nn.Dropout(dropout_rate)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.stages(self.stem(x)).mean(dim=(2, 3, 4))))


@register_model
def toy_c3d(num_classes: int, in_channels: int = 3, dropout_rate: float = 0.0) -> nn.Module:
    """``MODEL.ARCH toy_c3d``: takes the common arguments it names, nothing else."""
    return ToyC3D(num_classes, in_channels, dropout_rate=dropout_rate)


def probe_npy(path: str) -> VideoInfo:
    """Stream facts of a ``(T, H, W, 3)`` uint8 ``.npy`` video (PyAV cannot read these files)."""
    try:
        frames = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise VideoDecodeError(path, f"npy: {exc}") from None
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VideoDecodeError(path, f"npy: {frames.shape} {frames.dtype} is not (T, H, W, 3) uint8")
    return VideoInfo(frames.shape[0], NPY_FPS, frames.shape[1], frames.shape[2])


@register_backend("npy", Capabilities(seek=True), probe=probe_npy)
class NpyReader:
    """Frames of a ``.npy`` video at indices, resized (antialiased bilinear) to ``size`` when given."""

    def __init__(self, path: str, size: tuple[int, int] | None = None, info: VideoInfo | None = None):
        self.path, self.size = path, size
        info = info or probe_npy(path)
        self.info = replace(info, height=size[0], width=size[1]) if size else info
        self._frames = np.load(path, mmap_mode="r")

    def get_frames(self, indices) -> np.ndarray:
        indices = [int(i) for i in indices]
        if max(indices) >= len(self._frames):
            raise VideoDecodeError(self.path, f"frame {max(indices)} past the end ({len(self._frames)} frames)")
        frames = np.ascontiguousarray(self._frames[indices])
        if self.size is None:
            return frames
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        x = nn.functional.interpolate(x, size=self.size, mode="bilinear", antialias=True, align_corners=False)
        return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def close(self) -> None:
        self._frames = None


def write_npy_dataset(root, per_class: dict[str, int], seed: int = 0) -> None:
    """Two classes that differ in brightness (dark: ~40, bright: ~200, with noise and a moving bar), as ``.npy``
    videos of 12 frames at 40x48, listed in PySlowFast CSVs, with classnames.json."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    for split, count in per_class.items():
        lines = []
        for label, level in enumerate((40, 200)):
            for i in range(count):
                frames = np.clip(rng.normal(level, 20, (12, 40, 48, 3)), 0, 255).astype(np.uint8)
                for t in range(12):
                    frames[t, :, (4 * t) % 48] = 128  # something that moves
                name = f"{split}_{label}_{i}.npy"
                np.save(os.path.join(root, name), frames)
                lines.append(f"{name} {label}\n")
        with open(os.path.join(root, f"{split}.csv"), "w") as f:
            f.writelines(lines)
    with open(os.path.join(root, "classnames.json"), "w") as f:
        json.dump(["dark", "bright"], f)


def test_the_toy_backbone_and_backend_keep_their_contracts(tmp_path):
    from rs3d.data.decoders import open_video, probe_with
    from rs3d.models import check_backbone

    check_backbone(toy_c3d(num_classes=3), 3, (3, 4, 32, 32), test_crop=48)
    frames = np.random.default_rng(0).integers(0, 256, (6, 20, 24, 3), dtype=np.uint8)
    np.save(tmp_path / "v.npy", frames)
    info = probe_with(str(tmp_path / "v.npy"), ("npy",))  # the backend's own probe, not PyAV's
    assert (info.num_frames, info.height, info.width, info.fps) == (6, 20, 24, NPY_FPS)
    np.testing.assert_array_equal(open_video(str(tmp_path / "v.npy"), "npy", None, info).get_frames([4, 1]),
                                  frames[[4, 1]])
    with pytest.raises(VideoDecodeError, match="past the end"):
        open_video(str(tmp_path / "v.npy"), "npy").get_frames([6])


def test_custom_imports_by_module_name_and_their_errors(tmp_path, monkeypatch):
    from rs3d.config import ConfigError, load_config
    from rs3d.models import available_archs
    from rs3d.utils import imports

    monkeypatch.setattr(sys, "path", list(sys.path))  # the import adds the current folder; undo it afterwards
    monkeypatch.setattr(imports, "_IMPORTED", [])  # and the record that later pools of this session would import
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rs3d_user_models.py").write_text(
        "from rs3d.models import register_model\n\n@register_model\ndef user_net_from_cwd(num_classes):\n"
        "    raise ValueError('not built here')\n")
    load_config(None, ["CUSTOM_IMPORTS", "['rs3d_user_models']"])
    assert "user_net_from_cwd" in available_archs()
    with pytest.raises(ConfigError, match=r"^config: CUSTOM_IMPORTS: cannot import 'no_such_rs3d_module': "
                                          r"ModuleNotFoundError"):
        load_config(None, ["CUSTOM_IMPORTS", "['no_such_rs3d_module']"])
    with pytest.raises(ConfigError, match=r"CUSTOM_IMPORTS: .*missing\.py: file not found"):
        load_config(None, ["CUSTOM_IMPORTS", "['missing.py']"])
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match=r"CUSTOM_IMPORTS: cannot import 'broken.py': RuntimeError: boom"):
        load_config(None, ["CUSTOM_IMPORTS", "['broken.py']"])


@pytest.mark.slow  # a forkserver pool (~3 s idle, 10 s on 2 busy cores)
def test_the_data_tools_worker_processes_import_the_custom_modules(tmp_path, monkeypatch):
    """rs3d-check-data and rs3d-prepare-data run in forkserver workers, which inherit nothing registered: they
    import the parent's CUSTOM_IMPORTS before their first task."""
    from rs3d.data.prep.pool import run_in_pool
    from rs3d.utils import imports
    from rs3d.utils.imports import import_modules

    module = tmp_path / "rs3d_pool_probe.py"
    module.write_text("from rs3d.models import available_archs, register_model\n\n@register_model\n"
                      "def pool_probe_net(num_classes):\n    raise ValueError('never built')\n\n"
                      "def registered(_):\n    return 'pool_probe_net' in available_archs()\n")
    monkeypatch.setattr(imports, "_IMPORTED", [])  # later pools of this session do not import the probe
    monkeypatch.setattr(sys, "path", list(sys.path))  # the import adds tmp_path; undo it afterwards
    try:
        [probe] = import_modules(["rs3d_pool_probe"], str(tmp_path))  # by name, from a folder off the worker's path
        assert run_in_pool(probe.registered, [0, 1], workers=1, on_failure=lambda item, why: why) == [True, True]
    finally:
        sys.modules.pop("rs3d_pool_probe", None)


@pytest.mark.slow  # two fresh processes: train 10 short epochs, predict (~40 s on 2 shared cores)
def test_train_and_predict_with_a_user_backbone_and_backend_by_config_alone(tmp_path):
    data, out = tmp_path / "npy_data", tmp_path / "run"
    write_npy_dataset(str(data), {"train": 8, "val": 3})
    held_out = tmp_path / "held_out"
    write_npy_dataset(str(held_out), {"test": 2}, seed=1)
    config = tmp_path / "user.yaml"
    config.write_text(
        f"_BASE_: {os.path.join(ROOT, 'configs/toy/Base-Toy.yaml')}\n"
        f"CUSTOM_IMPORTS: [{os.path.abspath(__file__)}]\n"
        "MODEL:\n  ARCH: toy_c3d\n  NUM_CLASSES: 2\n  DROPOUT_RATE: 0.0\n"
        f"DATA:\n  PATH_TO_DATA_DIR: {data}\n  TOY_DATASET: False\n  DECODING_BACKEND: npy\n  FALLBACK_BACKEND: ''\n"
        "  NUM_FRAMES: 4\n  SAMPLING_RATE: 2\n  TRAIN_CROP_SIZE: 32\n  TEST_CROP_SIZE: 32\n"
        "  TRAIN_JITTER_SCALES: [32, 40]\n"
        "DATA_LOADER:\n  NUM_WORKERS: 1\n"
        "SOLVER:\n  MAX_EPOCH: 10\n  BASE_LR: 0.8\n  EMA_DECAY: 0.5\n"
        f"TRAIN:\n  BATCH_SIZE: 8\n  EVAL_PERIOD: 10\n  LOG_PERIOD: 50\nTEST:\n  ENABLE: False\n  NUM_ENSEMBLE_VIEWS: 1\n"
        f"OUTPUT_DIR: {out}\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    train = subprocess.run([sys.executable, os.path.join(ROOT, "tools/train_net.py"), "--cfg", str(config)],
                           capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert train.returncode == 0, train.stderr[-3000:]
    assert "toy_c3d" in (out / "config.yaml").read_text()
    videos = sorted(str(held_out / name) for name in os.listdir(held_out) if name.endswith(".npy"))
    predict = subprocess.run([sys.executable, os.path.join(ROOT, "tools/predict.py"), "--checkpoint",
                              str(out / "model_final.pyth"), *videos, "--topk", "1", "--output",
                              str(tmp_path / "pred.json")], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert predict.returncode == 0, predict.stderr[-3000:]
    results = {os.path.basename(p["video"]): p for p in json.loads((tmp_path / "pred.json").read_text())}
    assert len(results) == 4 and not any(r.get("error") for r in results.values()), results
    expected = {name: "dark" if name.startswith("test_0") else "bright" for name in results}
    assert {name: r["top"][0]["name"] for name, r in results.items()} == expected
