"""Review findings on rs3d-predict --render / --stream, window mode, rs3d-export and the test command: each test
drives the real code on small generated videos and a tiny random model."""
import json
import os
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, TINY, moving_frames, write_h264

from rs3d.checkpoint import CheckpointError, save_atomic
from rs3d.commands import predict
from rs3d.config import load_config
from rs3d.data.decoders import open_video
from rs3d.evaluation.testing import NoVideoReadError, run_test
from rs3d.inference import Predictor, render, sliding_windows
from rs3d.inference.sharing import save_pretrained
from rs3d.inference.stream import rolling_predictions
from rs3d.models import build_model
from rs3d.utils.distributed import DistInfo

CONFIG = os.path.join(REPO_ROOT, "configs/toy/rs3d_tiny.yaml")


@pytest.fixture()
def checkpoint(tmp_path) -> str:
    """The tiny RS3D (TINY sizes) with random weights, 8 named classes, head biases 0.05 apart."""
    cfg = load_config(CONFIG, TINY)
    torch.manual_seed(0)
    state = build_model(cfg, init=False).state_dict()
    state["fc.bias"] = 0.05 * torch.arange(8.0)
    path = str(tmp_path / "model.pyth")
    save_atomic({"model": state, "config": cfg.dump(), "class_names": [f"class_{i}" for i in range(8)]}, path)
    return path


def write_with_offset(path, frames, offset_sec: int) -> str:
    """Frames at 30 fps whose timestamps start at ``offset_sec`` (MPEG-TS for .ts, as a live stream joined late)."""
    with av.open(str(path), "w", format="mpegts" if str(path).endswith(".ts") else "mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = k + 30 * offset_sec, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return str(path)


def decoded(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])


def test_render_keeps_the_multi_view_answer(checkpoint, tmp_path, monkeypatch, capsys):
    frames = moving_frames(90)
    video = write_h264(tmp_path / "two.mp4", np.concatenate([frames, frames[::-1]]))
    assert predict.main([video, "--checkpoint", checkpoint, "--output", str(tmp_path / "plain.json")]) == 0
    plain = capsys.readouterr().out
    drawn = []
    monkeypatch.setattr(predict, "render_video", lambda src, dst, timeline, whole: drawn.append((timeline, whole)) or 1)
    assert predict.main([video, "--checkpoint", checkpoint, "--output", str(tmp_path / "render.json"),
                         "--render", str(tmp_path / "out.mp4")]) == 0
    rendered = json.loads((tmp_path / "render.json").read_text())
    assert rendered == json.loads((tmp_path / "plain.json").read_text()) and "timeline" not in rendered[0]
    assert capsys.readouterr().out.splitlines()[0] == plain.splitlines()[0]  # the same printed answer
    (timeline, whole), = drawn
    assert len(timeline) >= 4 and [[n, round(p, 6)] for n, p in whole] == [[t["name"], t["prob"]] for t in rendered[0]["top"]]


def test_render_folder_keeps_same_named_videos_apart(checkpoint, tmp_path, capsys):
    for folder, count in (("cam1", 20), ("cam2", 30)):
        os.makedirs(tmp_path / "in" / folder)
        write_h264(tmp_path / "in" / folder / "clip.mp4", moving_frames(count, seed=count))
    assert predict.main([str(tmp_path / "in"), "--checkpoint", checkpoint, "--render", str(tmp_path / "out")]) == 0
    assert len(decoded(tmp_path / "out/cam1/clip_labels.mp4")) == 20
    assert len(decoded(tmp_path / "out/cam2/clip_labels.mp4")) == 30
    assert len({line for line in capsys.readouterr().out.splitlines() if line.startswith("rendered")}) == 2
    assert predict.render_names(["/v/a.mp4", "/v/b.mp4"]) == ["a_labels.mp4", "b_labels.mp4"]  # unchanged
    assert predict.render_names(["/v/x.mp4", "/v/x.avi"]) == ["x_mp4_labels.mp4", "x_avi_labels.mp4"]


def label_per_frame(monkeypatch, src, timeline) -> tuple[list[str], list[np.ndarray]]:
    lines, images = [], []

    def capture(image, text):
        lines.append(text[0]), images.append(image)
        return image
    monkeypatch.setattr(render, "draw_lines", capture)
    render.render_video(src, os.path.splitext(src)[0] + "_labels.mp4", timeline, [("whole", 1.0)])
    return lines, images


def test_render_labels_count_from_the_first_frame(monkeypatch, tmp_path):
    video = write_with_offset(tmp_path / "late.ts", moving_frames(60), 600)
    timeline = [{"start": 0.0, "end": 1.0, "top": [{"name": "first", "prob": 1.0}]},
                {"start": 1.0, "end": 2.0, "top": [{"name": "second", "prob": 1.0}]}]
    lines, _ = label_per_frame(monkeypatch, video, timeline)
    assert lines == ["first 1.00"] * 30 + ["second 1.00"] * 30


def test_render_turns_phone_videos_upright(monkeypatch, tmp_path):
    video = write_h264(tmp_path / "phone.mp4", moving_frames(12, 48, 64), rotation=90)
    upright = open_video(video, "pyav").get_frames(list(range(12)))  # (12, 64, 48, 3), as rs3d decodes it
    _, images = label_per_frame(monkeypatch, video, [])
    assert np.array_equal(np.stack(images), upright)  # labels drawn on the upright image
    with av.open(os.path.splitext(video)[0] + "_labels.mp4") as out:
        first = next(out.decode(video=0))
        assert (first.height, first.width, first.rotation) == (64, 48, 0)


def test_stream_from_a_late_start_counts_from_its_first_frame(checkpoint, tmp_path):
    frames = moving_frames(90)
    predictor = Predictor(None, checkpoint, "cpu", topk=3)
    late = list(rolling_predictions(predictor, write_with_offset(tmp_path / "live.ts", frames, 600), 0.5, 2.0))
    zero = list(rolling_predictions(predictor, write_with_offset(tmp_path / "file.ts", frames, 0), 0.5, 2.0))
    assert len(late) >= 3 and all(0 < p.time <= 2.0 for p in late)
    assert [(p.time, [n for n, _ in p.top]) for p in late] == [(p.time, [n for n, _ in p.top]) for p in zero]
    assert [q for p in late for _, q in p.top] == pytest.approx([q for p in zero for _, q in p.top], abs=1e-4)


def test_safetensors_export_of_another_class_count_is_one_error(checkpoint, tmp_path):
    cfg = tmp_path / "ten.yaml"
    cfg.write_text(load_config(CONFIG, [*TINY, "MODEL.NUM_CLASSES", "10"]).dump())  # the checkpoint's model, 10 classes
    with pytest.raises(CheckpointError, match=r"does not fit the model: 2 tensors of another shape \(fc.weight"):
        save_pretrained(checkpoint, str(tmp_path / "shared"), str(cfg))
    assert not (tmp_path / "shared").exists()


def test_a_test_split_with_no_readable_video_writes_empty_reports(tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    os.makedirs(data / "v")
    for name in ("val", "train", "test"):
        (data / f"{name}.csv").write_text("".join(f"v/{i}.mp4 {i}\n" for i in range(3)))
    for i in range(3):
        (data / "v" / f"{i}.mp4").write_text("not a video\n")
    cfg = load_config(CONFIG, TINY + ["DATA.PATH_TO_DATA_DIR", str(data), "OUTPUT_DIR", str(out)])
    os.makedirs(out)
    model = build_model(cfg).eval()
    with pytest.raises(NoVideoReadError, match="none of the 3 videos could be read") as caught:
        run_test(cfg, model, [f"c{i}" for i in range(8)], DistInfo(), None)
    assert caught.value.exit_code == 1
    assert (out / "predictions_val.csv").read_text().strip().startswith("video,") and \
        len((out / "predictions_val.csv").read_text().splitlines()) == 1
    assert json.loads((out / "test_val.json").read_text())["num_videos"] == 0


def test_window_mode_reads_what_multi_view_reads_of_a_truncated_file(checkpoint, video_dir):
    predictor = Predictor(None, checkpoint, "cpu", max_batch=3)
    path = video_dir["truncated_faststart"]
    assert predictor.predict(path).error is None
    result = predictor.predict(path, window_sec=1.0)
    assert result.error is None and result.timeline
    info, decodable = open_video(path, "pyav").info, 0
    with pytest.raises(av.error.InvalidDataError), av.open(path) as container:  # the file ends mid-stream
        for _ in container.decode(video=0):
            decodable += 1
    assert 0 < decodable < info.num_frames
    spans = sliding_windows(predictor.spec, decodable, info.fps, 1.0, 0.5)  # the windows of the decodable frames
    assert [(w["start"], w["end"]) for w in result.timeline] == [(round(s.start_sec, 3), round(s.end_sec, 3))
                                                                 for s in spans]


def test_window_batches_do_not_change_the_timeline(checkpoint, video_dir):
    one = Predictor(None, checkpoint, "cpu", max_batch=1).predict(video_dir["good"], 0.5, 0.25)
    many = Predictor(None, checkpoint, "cpu", max_batch=64).predict(video_dir["good"], 0.5, 0.25)
    assert len(one.timeline) >= 5
    torch.testing.assert_close(one.window_probs, many.window_probs)
    assert one.timeline == many.timeline
