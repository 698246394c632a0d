"""rs3d-predict --stream (issue 22, item 4): rolling predictions from a local file served as an HTTP stream, against
the same clips decoded from the file by plain PyAV; the webcam index mapping."""

import functools
import http.server
import json
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from rs3d.checkpoint import save_atomic
from rs3d.commands import predict
from rs3d.config import load_config
from rs3d.inference import Predictor
from rs3d.inference.stream import frame_step, open_source
from rs3d.models import build_model

ROOT = Path(REPO_ROOT)


@pytest.fixture()
def checkpoint(tmp_path) -> str:
    cfg = load_config(str(ROOT / "configs/toy/rs3d_tiny.yaml"))
    torch.manual_seed(0)
    path = str(tmp_path / "model.pyth")
    save_atomic({"model": build_model(cfg, init=False).state_dict(), "config": cfg.dump(),
                 "class_names": [f"class_{i}" for i in range(8)]}, path)
    return path


@pytest.fixture()
def served(toy_dir):
    """The toy val videos over HTTP on 127.0.0.1 (FFmpeg reads them as a network stream)."""
    folder = Path(toy_dir) / "videos" / "val"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    video = sorted(folder.glob("*/*.mp4"))[0]
    yield f"http://127.0.0.1:{server.server_address[1]}/{video.parent.name}/{video.name}", video
    server.shutdown()


@pytest.mark.slow
def test_stream_predictions_match_the_same_clips_decoded_from_the_file(served, checkpoint, tmp_path, capsys):
    url, video = served
    out = tmp_path / "stream.json"
    # the toy videos have 16 frames: clips of 8 consecutive frames (a config override, as every command takes)
    assert predict.main(["--stream", url, "--checkpoint", checkpoint, "--stride-sec", "0.1", "--topk", "3",
                         "--output", str(out), "DATA.SAMPLING_RATE", "1"]) == 0
    results = json.loads(out.read_text())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip().endswith(tuple("0123456789"))]
    assert len(results) == len(lines) >= 2
    with av.open(str(video)) as container:  # the independent decode: every frame of the file
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    predictor = Predictor(None, checkpoint, "cpu", topk=3, overrides=["DATA.SAMPLING_RATE", "1"])
    spec = predictor.spec
    times = [r["time"] for r in results]
    assert all(b - a >= 0.1 - 1e-6 for a, b in zip(times, times[1:]))
    for result in results:
        last = round(result["time"] * fps)  # the frame the prediction was made at
        taken = [i for i in range(0, last + 1, spec.sampling_rate)][-spec.num_frames:]
        clip = torch.from_numpy(np.stack([frames[i] for i in taken])).permute(3, 0, 1, 2)
        expected = predictor.top_classes(predictor.predict_clip(clip))
        assert [t["name"] for t in result["top"]] == [name for name, _ in expected]
        assert [t["prob"] for t in result["top"]] == pytest.approx([p for _, p in expected], abs=1e-5)


def test_a_source_that_cannot_be_opened_is_one_error(checkpoint, tmp_path):
    from rs3d.utils.errors import UserInputError

    with pytest.raises(UserInputError, match="cannot open the stream"):
        predict.main(["--stream", str(tmp_path / "absent.mp4"), "--checkpoint", checkpoint])
    with pytest.raises(UserInputError, match="no video paths"):
        predict.main(["--stream", "0", "--checkpoint", checkpoint, "extra.mp4"])


def test_webcam_indices_and_frame_steps(monkeypatch):
    opened = []
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append((a, k)) or "container")
    assert open_source("0", "linux") == "container" and opened[-1] == (("/dev/video0",), {"format": "v4l2"})
    open_source("1", "darwin")
    assert opened[-1] == (("1",), {"format": "avfoundation"})
    assert frame_step(30.0, 4) == 4 and frame_step(60.0, 4, 30.0) == 8


class Recorder:
    """A stand-in predictor: records each clip's frames as the grey level of their first pixel."""

    def __init__(self, spec):
        self.spec, self.clips = spec, []

    def predict_clip(self, frames):
        self.clips.append([int(v) for v in frames[0, :, 0, 0]])
        return torch.zeros(1)

    def top_classes(self, probs):
        return []


@pytest.mark.parametrize("num_frames,sampling_rate,target_fps", [(8, 1, 30.0), (8, 1, 10.0), (6, 2, 0.0)])
def test_stream_clips_take_the_frames_clip_indices_takes(tmp_path, num_frames, sampling_rate, target_fps):
    """A 15 fps video whose frame k is grey level 10 k: the first stream clip holds the frames a file's clip from
    the start holds (clip_indices), also when TARGET_FPS repeats frames (30) or skips by 1.5 frames (10)."""
    from rs3d.data.clip_sampling import ClipSpec, clip_indices
    from rs3d.inference.stream import rolling_predictions
    from rs3d.utils.video_writer import write_h264

    frames = np.repeat((np.arange(24, dtype=np.uint8) * 10)[:, None, None, None], 3, axis=3)
    video = tmp_path / "grey.mp4"
    write_h264(video, np.broadcast_to(frames, (24, 32, 32, 3)).copy(), fps=15, crf=0)
    spec = ClipSpec(num_frames, sampling_rate, target_fps)
    recorder = Recorder(spec)
    next(rolling_predictions(recorder, str(video), stride_sec=100.0))
    expected = clip_indices(spec, 0, 24, 15.0) * 10
    assert np.abs(np.array(recorder.clips[0]) - expected).max() <= 2, (recorder.clips[0], expected.tolist())
