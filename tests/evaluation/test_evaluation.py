"""Evaluation maths checked against independent computations: top-k, per-class accuracy, views, outputs, gather."""
from __future__ import annotations

import csv
import json
import os
from datetime import timedelta

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from rs3d.evaluation import (
    ClassificationMeter,
    SmoothedValue,
    aggregate_views,
    format_summary_table,
    forward_views,
    merge_views,
    split_views,
    topk_correct,
    write_confusion_matrix,
    write_predictions,
)


def test_topk_matches_bruteforce_sort():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((200, 12)).astype(np.float32)
    labels = rng.integers(0, 12, 200)
    ranked = np.argsort(-logits, axis=1)  # brute force: full sort, best first
    expected = [int(sum(labels[i] in ranked[i, :k] for i in range(200))) for k in (1, 3, 5)]
    assert topk_correct(torch.from_numpy(logits), torch.from_numpy(labels), ks=(1, 3, 5)) == expected
    # k beyond the class count is clamped: every label is among all 12 classes
    assert topk_correct(torch.from_numpy(logits), torch.from_numpy(labels), ks=(1, 50))[1] == 200


def hand_example() -> tuple[torch.Tensor, torch.Tensor]:
    """10 videos, 4 classes; class 3 is predicted once but never a true label."""
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 0, 0, 0, 0, 0, 1, 0, 3, 1])
    scores = torch.full((10, 4), 0.1)
    scores[torch.arange(10), preds] = 0.7
    return scores, labels


def test_mean_class_accuracy_on_imbalanced_example():
    # class 0: 6/6 right, class 1: 1/2, class 2: 0/2 (class 3 has no true video, so it is left out).
    # top1 = 7/10 = 70 %; mean class accuracy = (100 + 50 + 0) / 3 = 50 %; top5 clamps to 4 classes = 100 %.
    scores, labels = hand_example()
    meter = ClassificationMeter()
    meter.update(scores[:4], labels[:4], loss=2.0)
    meter.update(scores[4:], labels[4:], loss=1.0)
    summary = meter.summary()
    assert summary["num_videos"] == 10
    assert summary["top1"] == pytest.approx(70.0)
    assert summary["top5"] == pytest.approx(100.0)
    assert summary["mean_class_accuracy"] == pytest.approx(50.0)
    assert summary["loss"] == pytest.approx((2.0 * 4 + 1.0 * 6) / 10)


def test_confusion_matrix_matches_numpy():
    rng = np.random.default_rng(1)
    scores = rng.random((300, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 300)
    expected = np.zeros((7, 7), dtype=np.int64)
    np.add.at(expected, (labels, scores.argmax(1)), 1)
    meter = ClassificationMeter()
    meter.update(torch.from_numpy(scores), torch.from_numpy(labels))
    matrix = meter.confusion_matrix()
    assert matrix.dtype == torch.int64
    np.testing.assert_array_equal(matrix.numpy(), expected)


def test_aggregate_views_modes():
    logits = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(0))
    manual = torch.zeros(3, 6)
    for n in range(3):
        for v in range(5):
            e = torch.exp(logits[n, v] - logits[n, v].max())
            manual[n] += e / e.sum() / 5
    torch.testing.assert_close(aggregate_views(logits), manual)
    torch.testing.assert_close(aggregate_views(logits, "logit_mean"), torch.softmax(logits.mean(1), -1))
    torch.testing.assert_close(aggregate_views(logits, "max"), torch.softmax(logits, -1).max(1).values)
    with pytest.raises(ValueError):
        aggregate_views(logits, "vote")


class TinyNet(nn.Module):
    """Mean-pool a clip then a linear head: (B, 3, T, H, W) -> (B, 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 4)
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        return self.head(x.mean(dim=(2, 3, 4)))


def test_forward_views_chunked_equals_single_forward():
    torch.manual_seed(0)
    model, videos = TinyNet(), torch.randn(3, 5, 3, 2, 4, 4)
    with torch.no_grad():
        full = model(videos.reshape(15, 3, 2, 4, 4)).view(3, 5, 4)
        model.calls.clear()
        chunked = forward_views(model, videos, max_batch=4)
    assert model.calls == [4, 4, 4, 3]
    torch.testing.assert_close(chunked, full)
    torch.testing.assert_close(merge_views(split_views(videos).flatten(1)[:, :4], 3), videos.flatten(2)[..., :4])


def test_write_predictions_round_trip(tmp_path):
    names = ["archery", "bowling", "cooking", "dancing"]
    scores, labels = hand_example()
    scores = scores / scores.sum(1, keepdim=True)  # 0.7 / 1.0 stays the top probability
    paths = [f"val/v{i}.mp4" for i in range(10)]
    write_predictions(tmp_path / "pred.csv", paths, scores, labels, names, topk=3)
    with open(tmp_path / "pred.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["video", "label", "label_name", "pred", "pred_name", "prob", "top3"]
    assert [r["video"] for r in rows] == paths
    assert rows[7]["label_name"] == "bowling" and rows[7]["pred_name"] == "archery"
    assert rows[8]["pred"] == "3" and float(rows[8]["prob"]) == pytest.approx(0.7)
    top = [item.split(":") for item in rows[8]["top3"].split(";")]
    assert top[0][0] == "dancing" and len(top) == 3 and float(top[1][1]) == pytest.approx(0.1)

    write_predictions(tmp_path / "out" / "pred.json", paths, scores, None, names)
    data = json.loads((tmp_path / "out" / "pred.json").read_text())
    assert [d["pred_name"] for d in data] == [names[int(p)] for p in scores.argmax(1)]
    assert data[0]["label"] is None and len(data[0]["top5"]) == 4  # topk clamped to 4 classes
    assert [p for p in os.listdir(tmp_path / "out")] == ["pred.json"]  # no temp file left behind
    with pytest.raises(ValueError):
        write_predictions(tmp_path / "pred.txt", paths, scores, labels, names)


def test_confusion_csv_and_summary_table(tmp_path):
    matrix = torch.tensor([[3, 1], [0, 2]])
    write_confusion_matrix(tmp_path / "cm.csv", matrix, ["a", "b"])
    with open(tmp_path / "cm.csv", newline="") as f:
        assert list(csv.reader(f)) == [["true\\pred", "a", "b"], ["a", "3", "1"], ["b", "0", "2"]]
    table = format_summary_table([{"model": "rs50", "top1": 71.234}, {"model": "r50"}], ["model", "top1"])
    assert table.splitlines()[0] == "| model | top1  |" and "71.23" in table
    assert table.splitlines()[3].startswith("| r50   |       |")


def test_smoothed_value():
    value = SmoothedValue(window=2)
    for v, n in [(1.0, 1), (2.0, 3), (4.0, 1)]:
        value.update(v, n)
    assert value.value == 4.0 and value.avg == 3.0 and value.median == 3.0
    assert value.global_avg == pytest.approx((1 + 6 + 4) / 5)


def union_data() -> tuple[torch.Tensor, torch.Tensor]:
    """7 videos, 3 classes, imbalanced labels, deterministic scores."""
    scores = torch.rand(7, 3, generator=torch.Generator().manual_seed(3))
    return scores, torch.tensor([0, 0, 0, 0, 1, 1, 2])


def gather_worker(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                           timeout=timedelta(seconds=30))
    try:
        scores, labels = union_data()
        ids = torch.tensor([[0, 2, 4, 6], [1, 3, 5, 0]][rank])  # DistributedSampler order; video 0 padded twice
        meter = ClassificationMeter()
        meter.update(scores[ids[:2]], labels[ids[:2]], ids[:2])
        meter.update(scores[ids[2:]], labels[ids[2:]], ids[2:])
        meter.gather()
        meter.gather()  # idempotent
        torch.save({"summary": meter.summary(), "cm": meter.confusion_matrix(), "ids": meter.video_ids,
                    "scores": meter.scores}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_gather_dedups_padded_videos(tmp_path):
    mp.spawn(gather_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    scores, labels = union_data()
    single = ClassificationMeter()
    single.update(scores, labels, torch.arange(7))
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["summary"] == pytest.approx(single.summary())
        assert got["summary"]["num_videos"] == 7
        torch.testing.assert_close(got["cm"], single.confusion_matrix())
        torch.testing.assert_close(got["ids"], torch.arange(7))
        torch.testing.assert_close(got["scores"], scores)
