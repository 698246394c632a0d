"""Pictures of every run (issue 22, item 3): curves.png and confusion_<split>.png, opened and checked for size and
content, from records and matrices built here and from a real training run."""

import json
import os

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from rs3d.engine.monitor import Monitor
from rs3d.evaluation.plots import plot_confusion, plot_training_curves


def assert_picture(path, width, height) -> np.ndarray:
    image = imread(path)
    assert image.shape[:2] == (height, width), image.shape
    colours = np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50 and image[..., :3].std() > 0.05  # drawn, not blank
    return image


def records(epochs: int = 6, steps: int = 10) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        for i in range(1, steps + 1):
            step = (e - 1) * steps + i
            out.append({"step": step, "split": "train", "loss": 2.0 / step ** 0.3, "lr": 0.1 * step / 60,
                        "clips_per_s": 50 + i, "top1": 10.0 * e})
        out.append({"step": e * steps, "split": "train_epoch", "epoch": e, "train_loss": 2.0 / e, "train_top1": 15.0 * e})
        if e % 2 == 0:
            out.append({"step": e * steps, "split": "val", "top1": 14.0 * e, "loss": 1.5 / e})
            out.append({"step": e * steps, "split": "val_ema", "top1": 15.0 * e, "loss": 1.4 / e})
    return out


def test_training_curves_picture(tmp_path):
    path = str(tmp_path / "curves.png")
    assert plot_training_curves(records(), path)
    assert_picture(path, 1000, 700)
    assert not plot_training_curves([r for r in records() if r["split"] == "train"], str(tmp_path / "none.png"))
    assert not os.path.exists(tmp_path / "none.png")  # nothing to draw before the first epoch ends


@pytest.mark.parametrize("num_classes,size", [(8, (700, 600)), (400, (1800, 900))])
def test_confusion_picture(tmp_path, num_classes, size):
    g = torch.Generator().manual_seed(0)
    matrix = torch.randint(0, 3, (num_classes, num_classes), generator=g) + torch.diag(
        torch.randint(0, 40, (num_classes,), generator=g))
    path = str(tmp_path / "confusion_val.png")
    plot_confusion(matrix, [f"class_{i}" for i in range(num_classes)], path)
    assert_picture(path, *size)


def test_monitor_keeps_the_runs_records_across_a_resume(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "split": "train", "loss": 2.0}) + "\n{cut off")
    monitor = Monitor(str(tmp_path), enabled=True, tensorboard=False)
    monitor.scalars(2, {"loss": 1.5}, "train")
    monitor.close()
    assert [(r["step"], r["loss"]) for r in monitor.records] == [(1, 2.0), (2, 1.5)]


def test_a_training_run_draws_its_pictures(trained_toy):
    out = trained_toy["out"]
    assert_picture(os.path.join(out, "curves.png"), 1000, 700)
    assert_picture(os.path.join(out, "confusion_val.png"), 700, 600)
