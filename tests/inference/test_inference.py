"""Predictor and rs3d-predict on the toy model: labels, consistency with the test loop, timelines, bad files."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, write_h264

import rs3d
from rs3d.data.clip_sampling import ClipSpec
from rs3d.data.decoders import open_video
from rs3d.inference import sliding_windows

ROOT = REPO_ROOT


def val_videos(trained_toy):
    rows = [line.split() for line in open(os.path.join(trained_toy["data"], "val.csv"))]
    return [os.path.join(trained_toy["data"], path) for path, _ in rows], [int(label) for _, label in rows]


def test_predictor_matches_the_test_loop_and_gets_labels_right(trained_toy):
    predictor = rs3d.Predictor(None, os.path.join(trained_toy["out"], "model_final.pyth"))
    assert predictor.class_names[:2] == ["move_left", "move_right"]
    paths, labels = val_videos(trained_toy)
    predictions = predictor.predict_many(paths)
    correct = sum(p.top[0][0] == predictor.class_names[label] for p, label in zip(predictions, labels))
    assert correct / len(paths) >= 0.4  # chance is 0.125
    # The trainer's final test (same views, same weights) wrote its per-video predictions: identical top-1.
    with open(os.path.join(trained_toy["out"], "predictions_val.csv")) as f:
        written = {row["video"]: row["pred_name"] for row in csv.DictReader(f)}
    assert {p.path: p.top[0][0] for p in predictions} == written
    for p in predictions:
        assert abs(float(p.probs.sum()) - 1.0) < 1e-4 and len(p.top) == 5


def test_predict_clip_single_and_batched(trained_toy):
    predictor = rs3d.Predictor(None, os.path.join(trained_toy["out"], "model_final.pyth"))
    paths, _ = val_videos(trained_toy)
    frames = [open_video(p, "pyav").get_frames(list(range(0, 29, 4))) for p in paths[:3]]
    clips = torch.stack([torch.from_numpy(f).permute(3, 0, 1, 2) for f in frames])  # (3, 3, 8, 120, 160)
    batched = predictor.predict_clip(clips)
    assert batched.shape == (3, 8)
    torch.testing.assert_close(predictor.predict_clip(clips[1]), batched[1], rtol=1e-4, atol=1e-5)


def test_bad_files_are_reported_and_skipped(trained_toy, tmp_path):
    predictor = rs3d.Predictor(None, os.path.join(trained_toy["out"], "model_final.pyth"))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    paths, _ = val_videos(trained_toy)
    results = predictor.predict_many([paths[0], str(text), str(tmp_path / "missing.mp4"), paths[1]])
    assert [r.error is None for r in results] == [True, False, False, True]
    assert "not found" in results[2].error and results[3].top


def test_timeline_switches_where_the_content_switches(trained_toy, tmp_path):
    predictor = rs3d.Predictor(None, os.path.join(trained_toy["out"], "model_final.pyth"))
    paths, labels = val_videos(trained_toy)
    predictions = predictor.predict_many(paths)
    # The two most confidently right videos of different classes, played one after the other.
    ranked = sorted((p.top[0][1], i) for i, p in enumerate(predictions)
                    if p.top[0][0] == predictor.class_names[labels[i]])
    first = ranked[-1][1]
    second = next(i for _, i in reversed(ranked) if labels[i] != labels[first])
    frames = [open_video(paths[i], "pyav").get_frames(list(range(32))) for i in (first, second)]
    joined = write_h264(str(tmp_path / "joined.mp4"), np.concatenate(frames))
    result = predictor.predict(joined, window_sec=1.0, stride_sec=0.25)
    timeline = [(w["start"], w["end"], w["top"][0]["name"]) for w in result.timeline]
    names = [predictor.class_names[labels[first]], predictor.class_names[labels[second]]]
    inside_first = [name for start, end, name in timeline if end <= 32 / 30]
    inside_second = [name for start, end, name in timeline if start >= 32 / 30]
    assert inside_first and inside_second
    assert inside_first[0] == names[0] and inside_second[-1] == names[1]
    assert timeline[0][0] == 0.0 and abs(timeline[-1][1] - 64 / 30) < 1e-3


def test_sliding_windows_cover_the_video():
    spec = ClipSpec(8, 4)
    windows = sliding_windows(spec, 300, 30.0, 2.0, 1.0)
    assert [(w.start_sec, w.end_sec) for w in windows[:2]] == [(0.0, 2.0), (1.0, 3.0)]
    assert windows[-1].end_sec == 10.0 and len(windows) == 9
    assert all(w.indices.min() >= w.start_sec * 30 and w.indices.max() < w.end_sec * 30 for w in windows)
    narrow = sliding_windows(spec, 300, 30.0, 0.5, 0.5)  # windows shorter than the 29-frame clip
    assert narrow[0].indices.min() == 0 and narrow[-1].indices.max() <= 299  # clamped, never wrapped
    short = sliding_windows(spec, 20, 30.0, 2.0, 1.0)
    assert len(short) == 1 and short[0].end_sec == 20 / 30


@pytest.mark.slow
def test_cli_writes_json_and_csv(trained_toy, tmp_path, capsys):
    paths, _ = val_videos(trained_toy)
    from rs3d.commands import predict

    out = tmp_path / "pred.json"  # in process: the command's main with its argv (the pty tests run the script)
    checkpoint = os.path.join(trained_toy["out"], "model_final.pyth")
    assert predict.main(["--checkpoint", checkpoint, os.path.dirname(paths[0]), str(tmp_path / "gone.mp4"),
                         "--topk", "3", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert len(data) == 5 and data[-1]["error"] == "file not found" and len(data[0]["top"]) == 3
    assert "gone.mp4: skipped" in capsys.readouterr().out
    csv_out = tmp_path / "pred.csv"
    assert predict.main(["--checkpoint", checkpoint, paths[0], "--window-sec", "0.5", "--output", str(csv_out)]) == 0
    rows = list(csv.DictReader(open(csv_out)))
    assert rows[0]["rank"] == "1" and any(r["window_start"] for r in rows)


@pytest.mark.slow
def test_export_round_trip(trained_toy, tmp_path):
    from rs3d.inference.export import export_model

    predictor = rs3d.Predictor(None, os.path.join(trained_toy["out"], "model_final.pyth"), device="cpu")
    path = str(tmp_path / "model.pt2")
    report = export_model(predictor.model, 8, 64, path)
    assert report.max_abs_diff < 1e-4 and os.listdir(tmp_path) == ["model.pt2"]
    program = torch.export.load(path).module()
    clip = torch.randn(3, 3, 8, 64, 64)  # another batch size than the example: the batch is dynamic
    with torch.no_grad():
        torch.testing.assert_close(program(clip), predictor.model(clip), rtol=1e-4, atol=1e-4)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tools/export.py"), "--checkpoint",
                          os.path.join(trained_toy["out"], "model_final.pyth"), "--output", str(tmp_path / "b.pt2")],
                         capture_output=True, text=True)
    assert run.returncode == 0 and "input float32 (N, 3, 8, 64, 64)" in run.stdout, run.stderr[-1500:]


@pytest.mark.slow
def test_render_draws_the_current_labels(trained_toy, tmp_path):
    from rs3d.inference.render import label_lines

    paths, _ = val_videos(trained_toy)
    out = tmp_path / "labelled.mp4"
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tools/predict.py"), "--checkpoint",
                          os.path.join(trained_toy["out"], "model_final.pyth"), paths[0], "--render", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0 and "rendered" in run.stdout, run.stderr[-1500:]
    source = open_video(paths[0], "pyav").get_frames(list(range(32)))
    drawn = open_video(str(out), "pyav").get_frames(list(range(32)))
    assert drawn.shape == source.shape
    corner = np.abs(drawn[:, :12, :40].astype(float) - source[:, :12, :40]).mean()
    rest = np.abs(drawn[:, 60:, 80:].astype(float) - source[:, 60:, 80:]).mean()
    assert corner > 30 and rest < 8  # a text box top-left, the picture untouched elsewhere
    timeline = [{"start": 0.0, "top": [{"name": "a", "prob": 0.9}]},
                {"start": 1.0, "top": [{"name": "b", "prob": 0.8}]}]
    assert label_lines(timeline, [], 0.5) == ["a 0.90"] and label_lines(timeline, [], 1.2) == ["b 0.80"]
    assert label_lines([], [("c", 0.5)], 3.0) == ["c 0.50"]


def test_predict_searches_folders_with_the_folder_datasets_video_extensions(tmp_path, capsys):
    """rs3d-predict and the class-folder datasets share one extension list: an MPEG-TS file (``.ts``, which
    predict's own shorter list used to miss) in a folder is found and predicted; other files are not."""
    from conftest import moving_frames, tiny_cfg

    from rs3d.commands import predict
    from rs3d.models import build_model
    from rs3d.utils.class_folders import VIDEO_EXTENSIONS

    assert ".ts" in VIDEO_EXTENSIONS and not hasattr(predict, "VIDEO_EXTENSIONS")
    cfg = tiny_cfg(str(tmp_path / "data"), tmp_path / "out")
    torch.save({"model": build_model(cfg).state_dict(), "config": cfg.dump()}, tmp_path / "model.pyth")
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    write_h264(str(videos / "sub" / "clip.ts"), moving_frames(20))
    (videos / "notes.txt").write_text("not a video\n")
    out = tmp_path / "predictions.json"
    assert predict.main([str(videos), "--checkpoint", str(tmp_path / "model.pyth"), "--output", str(out)]) == 0
    [found] = json.loads(out.read_text())
    assert found["video"] == str(videos / "sub" / "clip.ts") and "error" not in found and len(found["top"]) == 5
