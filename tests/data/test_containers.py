"""Videos whose container declares no frame count (VP9 WebM, MPEG-4 Matroska, variable-frame-rate Matroska) read,
predict and count their frames right (issue 25, item 4); PyAV's own full decode is the reference."""

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from rs3d.checkpoint import save_atomic
from rs3d.commands import predict
from rs3d.config import load_config
from rs3d.data.decoders import open_video, probe_video
from rs3d.models import build_model

ROOT = Path(REPO_ROOT)
FRAMES = 40


def write(path: Path, codec: str, fmt: str, vfr: bool = False) -> Path:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 6) % 250, np.uint8), format="rgb24")
            if vfr:  # gaps that grow: 40 frames over many seconds
                frame.pts, frame.time_base = i * i // 2 + i, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("containers")
    out = [write(root / "vp9.webm", "libvpx-vp9", "webm"), write(root / "mpeg4.mkv", "mpeg4", "matroska"),
           write(root / "vfr.mkv", "libx264", "matroska", vfr=True)]
    for path in out:
        with av.open(str(path)) as container:
            assert container.streams.video[0].frames == 0  # the container declares no count
    return out


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_frame_count_and_frames_match_a_full_decode(videos, index, backend):
    path = videos[index]
    with av.open(str(path)) as container:
        reference = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert probe_video(str(path)).num_frames == len(reference) == FRAMES
    reader = open_video(str(path), backend)
    assert reader.info.num_frames == FRAMES
    wanted = [0, 7, 20, FRAMES - 1]
    np.testing.assert_allclose(reader.get_frames(wanted).astype(int), np.stack([reference[i] for i in wanted]),
                               atol=2)
    reader.close()


def test_predict_reads_every_one(videos, tmp_path):
    cfg = load_config(str(ROOT / "configs/toy/rs3d_tiny.yaml"))
    torch.manual_seed(0)
    checkpoint = str(tmp_path / "m.pyth")
    save_atomic({"model": build_model(cfg, init=False).state_dict(), "config": cfg.dump()}, checkpoint)
    out = tmp_path / "p.json"
    assert predict.main([*map(str, videos), "--checkpoint", checkpoint, "--output", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [Path(r["video"]).name for r in results] == [p.name for p in videos]
    assert all("error" not in r and len(r["top"]) == 5 for r in results)


def test_predict_exits_1_when_no_video_could_be_read_and_writes_the_others(videos, tmp_path):
    cfg = load_config(str(ROOT / "configs/toy/rs3d_tiny.yaml"))
    checkpoint = str(tmp_path / "m.pyth")
    save_atomic({"model": build_model(cfg, init=False).state_dict(), "config": cfg.dump()}, checkpoint)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    out = tmp_path / "p.json"
    assert predict.main([str(junk), "--checkpoint", checkpoint, "--output", str(out)]) == 1
    assert "error" in json.loads(out.read_text())[0]
    assert predict.main([str(junk), str(videos[0]), "--checkpoint", checkpoint, "--output", str(out)]) == 0
    assert [("error" in r) for r in json.loads(out.read_text())] == [True, False]
