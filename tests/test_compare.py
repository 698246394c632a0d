"""tools/compare.py pieces: Pareto front, accuracy from run dirs, a measured row, CSV and plot."""
import csv
import os

import pytest

from rs3d.studies.compare import (
    SpeedBudget,
    compare_row,
    pareto_front,
    plot_speed_accuracy,
    run_accuracy,
    write_csv,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pareto_front():
    points = [(1.0, 80.0), (2.0, 75.0), (1.5, 70.0), (3.0, 60.0), (3.0, 55.0), (0.5, 80.0)]
    assert pareto_front(points) == [0, 1, 3]  # (1.5, 70) is beaten by (2, 75); (0.5, 80) by (1, 80)


@pytest.mark.slow
def test_compare_row_and_outputs(trained_toy, tmp_path):
    accuracy = run_accuracy(trained_toy["out"])
    assert accuracy["top-1 1-view"] == trained_toy["summary"]["val_ema_top1"]
    assert accuracy["top-1 multi-view"] == trained_toy["test"]["top1"]
    row = compare_row(os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml"), [], SpeedBudget("cpu", 1, 2, 2),
                      trained_toy["out"])
    assert row["params (M)"] > 1.0 and row["GFLOPs/view"] > 0.05 and row["max batch"] == 2
    assert row["infer clips/s b1"] > 0 and row["train clips/s"] > 0 and row["train peak MiB"] > 100
    other = dict(row, model="slower", **{"infer clips/s b1": row["infer clips/s b1"] / 2, "top-1 multi-view": 10.0})
    write_csv([row, other], str(tmp_path / "c.csv"))
    assert [r["model"] for r in csv.DictReader(open(tmp_path / "c.csv"))] == ["rs3d_tiny", "slower"]
    assert plot_speed_accuracy([row, other], str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert not plot_speed_accuracy([{"model": "x", "infer clips/s b1": 1.0}], str(tmp_path / "q.png"))
