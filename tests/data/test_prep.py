"""Dataset tools: every kind of bad file is classified, cleaned CSVs keep exactly the good videos, re-encoding
gives the asked size and keyframe interval, and prepare_dataset resumes where it stopped."""

import json
import os
import runpy
import struct
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import REPO_ROOT

from rs3d.data.decoders import PyAVReader, probe_video
from rs3d.data.metadata import load_metadata, metadata_path
from rs3d.data.prep.checks import check_split, check_video
from rs3d.data.prep.pool import CRASHED, run_in_pool
from rs3d.data.prep.reencode import prepare_split, reencode_video
from rs3d.data.splits import read_split, write_csv_subset

ROOT = Path(REPO_ROOT)
MIN_FRAMES = 15  # --num-frames 8 --sampling-rate 2
GOOD = ["a/good_0.mp4", "a/good_1.mp4", "b/good_2.mp4"]
BAD = {"b/short.mp4": "too_short", "b/empty.mp4": "empty", "b/text.mp4": "not_video", "b/audio.m4a": "audio_only",
       "b/truncated.mp4": "ok", "b/no_index.mp4": "undecodable", "b/missing.mp4": "missing"}
CUT = "b/truncated.mp4"  # declares 60 frames, about half decode: kept, sampled within the decodable frames


def frames(seed: int, num_frames: int = 30, noise: float = 0.0) -> np.ndarray:
    """A smooth gradient with a moving square (plus optional noise, which makes packets big)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:64]
    video = np.empty((num_frames, 48, 64, 3), np.uint8)
    for t in range(num_frames):
        image = np.stack([x * 3 + seed * 20, y * 4, np.full_like(x, 128)], -1).astype(np.float32)
        image[10:26, 2 + t:18 + t] = 240
        image += noise * rng.standard_normal(image.shape)
        video[t] = np.clip(image, 0, 255)
    return video


def write(path: Path, video: np.ndarray, faststart: bool = False) -> Path:
    """H.264 at 30 fps; faststart puts the index first, so a cut file still opens (a truncated stream)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"} if faststart else {}) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        for image in video:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def write_audio(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        for start in range(0, 16000, 1024):
            wave = np.sin(np.arange(start, start + 1024) * 0.17, dtype=np.float32)[None] * 0.2
            frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
            frame.sample_rate = 16000
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def rotate_90(src: Path, dst: Path) -> Path:
    """Copy with a 90-degree display matrix in the mp4 track header, as phones write it."""
    data = bytearray(src.read_bytes())
    start = data.index(b"tkhd") + 4 + 4 + 20 + 8 + 8  # version 0: flags, times, track, duration, reserved, layer..
    data[start:start + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """videos/ with 3 good clips and one of each bad kind, train.csv listing all (and a missing one)."""
    root = tmp_path_factory.mktemp("data")
    videos = root / "videos"
    for seed, rel in enumerate(GOOD):
        write(videos / rel, frames(seed))
    write(videos / "b/short.mp4", frames(5, num_frames=5))
    (videos / "b/empty.mp4").write_bytes(b"")
    (videos / "b/text.mp4").write_text("this is not a video\n" * 20)
    write_audio(videos / "b/audio.m4a")
    cut_in_half(write(videos / "b/truncated.mp4", frames(6, num_frames=60, noise=40), faststart=True))
    cut_in_half(write(videos / "b/no_index.mp4", frames(7)))  # the index (moov) is written last: cut off
    names = GOOD + list(BAD)
    (root / "train.csv").write_text("".join(f"videos/{rel} {i % 2}\n" for i, rel in enumerate(names)))
    (root / "classnames.json").write_text(json.dumps({"left": 0, "right": 1}))
    return root


@pytest.mark.parametrize("rel", GOOD[:1] + list(BAD))
def test_check_video_classifies_each_kind(dataset, rel):
    check = check_video(str(dataset / "videos" / rel), min_frames=MIN_FRAMES)
    assert check.status == BAD.get(rel, "ok"), check
    assert check.ok == (rel in GOOD or rel == CUT) and check.readable == (rel in GOOD or rel in ("b/short.mp4", CUT))
    assert bool(check.problems) != check.ok
    if rel in GOOD:
        assert (check.num_frames, check.fps, check.height, check.width, check.codec) == (30, 30.0, 48, 64, "h264")
        assert check.seconds == 1.0 and any("very small" in w for w in check.warnings)
    if rel == CUT:
        assert 0 < check.num_frames < 60 and check.declared_frames == 60
        assert any(f"declares 60 frames but only {check.num_frames} decode" in w for w in check.warnings)


def square_or_crash(x: int) -> int:
    """Pool task: 3 kills its worker process as a decoder segfault would, 4 raises."""
    if x == 3:
        os._exit(1)
    if x == 4:
        raise ValueError("four")
    return x * x


@pytest.mark.slow
def test_run_in_pool_survives_a_crashing_worker():
    results = run_in_pool(square_or_crash, [1, 2, 3, 4, 5, 6], workers=2,
                          on_failure=lambda item, reason: (item, reason))
    assert results == [1, 4, (3, CRASHED), (4, "ValueError: four"), 25, 36]


def test_check_split_and_cleaned_csv(dataset, tmp_path):
    records = read_split(str(dataset), "train")
    checks = check_split(records, workers=2, min_frames=MIN_FRAMES)
    assert [c.status for c in checks] == ["ok"] * len(GOOD) + list(BAD.values())
    out = tmp_path / "clean.csv"
    write_csv_subset(str(dataset / "train.csv"), [r for r, c in zip(records, checks) if c.readable], str(out))
    assert [line.split()[0] for line in out.read_text().splitlines()] == [f"videos/{r}" for r in GOOD + ["b/short.mp4", CUT]]


@pytest.mark.slow
def test_check_dataset_cli_writes_clean_csv(dataset, capsys):
    from rs3d.commands import check_data

    assert check_data.main([str(dataset), "--num-frames", "8", "--sampling-rate", "2", "--workers", "2",
                            "--drop-short"]) == 0
    stdout = capsys.readouterr().out
    for status in set(BAD.values()) - {"ok"}:
        assert f"\n{status} (1" in stdout, stdout
    clean = (dataset / "train.clean.csv").read_text().splitlines()
    assert clean == [f"videos/{rel} {i % 2}" for i, rel in enumerate(GOOD + list(BAD)) if rel in GOOD or rel == CUT]
    meta = json.loads((dataset / "train.meta.json").read_text())  # stream facts for the loaders
    assert len(meta) >= len(GOOD) and all(entry["num_frames"] > 0 and entry["fps"] > 0 for entry in meta.values())


def test_check_dataset_usage_error(dataset, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["check_dataset.py", str(dataset), "--split", "nope"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "tools/check_dataset.py"), run_name="__main__")
    assert exit_info.value.code == 2 and "nope.csv: annotation file not found" in capsys.readouterr().err


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    return [i for i, p in enumerate(sorted(packets, key=lambda p: p.pts)) if p.is_keyframe]


def decode_all(path: Path) -> np.ndarray:
    reader = PyAVReader(str(path))
    return reader.get_frames(range(reader.info.num_frames)).astype(np.int16)


def test_reencode_video_size_keyframes_and_fidelity(dataset, tmp_path):
    src = dataset / "videos" / GOOD[0]
    small = tmp_path / "small.mp4"
    summary = reencode_video(str(src), str(small), short_side=32, keyframe_interval=8)
    info = probe_video(str(small))
    assert (info.height, info.width, info.num_frames, info.fps, info.rotation) == (32, 42, 30, 30.0, 0)
    assert summary["frames"] == 30 and summary["dst_bytes"] == small.stat().st_size
    assert keyframes(small) == [0, 8, 16, 24]
    same = tmp_path / "same.mp4"  # short side 48 < 256: never upscaled
    reencode_video(str(src), str(same), short_side=256, keyframe_interval=16)
    info = probe_video(str(same))
    assert (info.height, info.width, info.num_frames) == (48, 64, 30) and keyframes(same) == [0, 16]
    assert np.abs(decode_all(same) - decode_all(src)).mean() < 3
    rotated = rotate_90(src, tmp_path / "rotated.mp4")
    assert probe_video(str(rotated)).rotation != 0
    upright = tmp_path / "upright.mp4"
    reencode_video(str(rotated), str(upright), short_side=256)
    info = probe_video(str(upright))
    assert (info.height, info.width, info.rotation) == (64, 48, 0)  # upright, no display matrix
    assert np.abs(decode_all(upright) - decode_all(rotated)).mean() < 3
    assert sorted(os.listdir(tmp_path)) == ["rotated.mp4", "same.mp4", "small.mp4", "upright.mp4"]  # no temp files


def test_reencode_tunes_for_fast_decoding_by_default(dataset, tmp_path):
    src = str(dataset / "videos" / GOOD[0])
    fast, plain = tmp_path / "fast.mp4", tmp_path / "plain.mp4"
    reencode_video(src, str(fast), short_side=32)
    reencode_video(src, str(plain), short_side=32, tune=None)
    # x264 writes its settings into the stream (an SEI message): CAVLC and no deblocking filter vs its defaults.
    assert b"cabac=0" in fast.read_bytes() and b"deblock=0" in fast.read_bytes()
    assert b"cabac=1" in plain.read_bytes() and b"deblock=1" in plain.read_bytes()


@pytest.mark.slow
def test_prepare_dataset_cli_is_resumable(dataset, tmp_path):
    dst = tmp_path / "prepared"
    run = subprocess.run([sys.executable, str(ROOT / "tools/prepare_dataset.py"), str(dataset), str(dst),
                          "--short-side", "32", "--keyframe-interval", "8", "--workers", "2"],
                         check=False, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "val.csv" not in run.stdout and "b/text.mp4" in run.stdout  # missing splits skipped, failures listed
    made = GOOD + ["b/short.mp4"]
    assert (dst / "train.csv").read_text().splitlines() == [f"videos/{rel} {i % 2}" for i, rel in enumerate(made)]
    assert (dst / "classnames.json").read_text() == (dataset / "classnames.json").read_text()
    facts = load_metadata(metadata_path(str(dst), "train"), [str(dst / "videos" / rel) for rel in made])
    for rel in made:
        info = probe_video(str(dst / "videos" / rel))
        assert (info.height, info.width) == (32, 42)
        assert facts[str(dst / "videos" / rel)] == info  # the loaders need not probe the prepared videos
    records = read_split(str(dataset), "train")
    again = prepare_split(records, str(dataset), str(dst), short_side=32, keyframe_interval=8, workers=2)
    assert [r.status for r in again] == ["skipped"] * len(made) + ["failed"] * (len(BAD) - 1)
    killed = dst / "videos" / GOOD[1]  # a killed run leaves only its temp file
    killed.unlink()
    partial = killed.with_name(f".{killed.name}.12345.abcd1234.tmp.mp4")
    partial.write_bytes(b"half a video")
    resumed = prepare_split(records[:len(made)], str(dataset), str(dst), short_side=32, keyframe_interval=8)
    assert [r.status for r in resumed] == ["skipped", "done", "skipped", "skipped"]
    assert killed.is_file() and not partial.exists()
    assert check_video(str(killed)).ok


def test_reencode_sets_its_own_frame_types(tmp_path):
    from conftest import moving_frames, write_h264

    src = write_h264(str(tmp_path / "gop5.mp4"), moving_frames(40), gop=5)  # keyframes at 0, 5, 10, ...
    dst = tmp_path / "prepared.mp4"
    reencode_video(src, str(dst), keyframe_interval=16)
    with av.open(str(dst)) as container:
        types = "".join(" IPB"[int(frame.pict_type)] for frame in container.decode(video=0))
    # The source's frame types do not leak in: keyframes every 16 frames, a B-frame at every odd position but the
    # last before a keyframe, so the even frames decode alone.
    assert types == ("IB" + "PB" * 6 + "PP") * 2 + "IB" + "PB" * 2 + "PP"
    assert probe_video(str(dst)).ref_step == 2
    reencode_video(src, str(tmp_path / "plain.mp4"), keyframe_interval=16, skippable_odd_frames=False)
    assert probe_video(str(tmp_path / "plain.mp4")).ref_step == 1
    with pytest.raises(ValueError, match="keyframe interval 15 is odd"):
        reencode_video(src, str(tmp_path / "odd.mp4"), keyframe_interval=15)


@pytest.mark.slow
def test_prepare_dataset_cli_rejects_an_odd_keyframe_interval(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "tools/prepare_dataset.py"), str(tmp_path), str(tmp_path / "o"),
                          "--keyframe-interval", "15"], check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--keyframe-interval 15 is odd" in run.stderr


def test_check_dataset_reads_the_clip_length_from_a_config(dataset, capsys):
    from rs3d.commands import check_data

    cfg = str(ROOT / "configs/toy/rs3d_tiny.yaml")
    assert check_data.main(["--cfg", cfg, "--workers", "1", "--no-decode", "DATA.PATH_TO_DATA_DIR", str(dataset),
                            "DATA.NUM_FRAMES", "5", "DATA.SAMPLING_RATE", "3", "DATA.TOY_DATASET", "False"]) == 0
    assert "one clip spans 13 frames" in capsys.readouterr().out  # (5 - 1) * 3 + 1
    with pytest.raises(SystemExit):
        check_data.main([str(dataset), "DATA.NUM_FRAMES", "5"])  # overrides without --cfg


def test_check_dataset_on_a_folder_of_class_folders(video_dir, tmp_path, capsys):
    from rs3d.commands import check_data

    root = tmp_path / "mine"
    for cls, names in {"jump": ["good", "good2", "text"], "run": ["fps15", "portrait", "empty"]}.items():
        (root / "train" / cls).mkdir(parents=True)
        for name in names:
            (root / "train" / cls / f"{name}.mp4").write_bytes(open(video_dir[name], "rb").read())
    clean = []
    for split, count in (("train", 4), ("val", 2)):  # no val/: val is held out of train/, and train is the rest
        assert check_data.main([str(root), "--split", split, "--num-frames", "2", "--workers", "1"]) == 0
        out = capsys.readouterr().out
        assert f"checking {count} videos" in out and "wrote" in out
        clean += (root / f"{split}.clean.csv").read_text().splitlines()
    assert sorted(clean) == ["train/jump/good.mp4 0", "train/jump/good2.mp4 0", "train/run/fps15.mp4 1",
                             "train/run/portrait.mp4 1"]


def test_prepare_data_takes_the_clip_facts_and_a_class_folder_source_from_a_config(video_dir, tmp_path, capsys):
    from rs3d.commands import prepare_data

    src, dst = tmp_path / "mine", tmp_path / "prepared"
    for cls, names in {"jump": ["good", "short"], "run": ["good2", "text"]}.items():
        (src / cls).mkdir(parents=True)
        for name in names:
            (src / cls / f"{name}.mp4").write_bytes(open(video_dir[name], "rb").read())
    cfg = str(ROOT / "configs/toy/rs3d_tiny.yaml")
    # An odd stride (3) gains nothing from skippable odd frames: they are off, so an odd keyframe interval is fine.
    assert prepare_data.main(["--cfg", cfg, str(dst), "--short-side", "32", "--keyframe-interval", "5", "--workers",
                              "1", "DATA.PATH_TO_DATA_DIR", str(src), "DATA.NUM_FRAMES", "8", "DATA.SAMPLING_RATE", "3",
                              "DATA.FOLDER_VAL_FRACTION", "0.5", "DATA.TOY_DATASET", "False"]) == 0
    out = capsys.readouterr().out
    assert "shorter than a clip (22 frames)" in out and "run/text.mp4" in out  # (8 - 1) * 3 + 1; the failure listed
    lines = sorted((dst / "train.csv").read_text().splitlines() + (dst / "val.csv").read_text().splitlines())
    assert lines == ["jump/good.mp4 0", "jump/short.mp4 0", "run/good2.mp4 1"]  # the source's split, text.mp4 failed
    assert not (dst / "test.csv").exists()  # no test/ folder: a test split would repeat val
    assert json.loads((dst / "classnames.json").read_text()) == ["jump", "run"]
    info = probe_video(str(dst / "jump" / "good.mp4"))
    assert (info.height, info.width, info.ref_step) == (32, 42, 1)
    assert {r.label for r in read_split(str(dst), "train") + read_split(str(dst), "val")} == {0, 1}

    from rs3d.commands.prepare_data import parse_args

    for argv in ([str(src), str(dst), "--keyframe-interval", "5"],  # default stride 2: skippable odd frames, odd GOP
                 [str(src), str(dst), "DATA.SAMPLING_RATE", "3"],  # overrides need --cfg
                 ["--cfg", cfg, str(dst), "DATA.PATH_TO_DATA_DIR", ""]):  # one folder, and the config names none
        with pytest.raises(SystemExit):
            parse_args(argv)


def test_prepare_data_refuses_a_destination_that_links_to_the_source(tmp_path, capsys):
    """A link to SRC passed as DST would rewrite the source's CSVs (issue 25): refused, nothing written."""
    from rs3d.commands import prepare_data

    src = tmp_path / "src"
    src.mkdir()
    (src / "train.csv").write_text("a.mp4 0\n")
    (tmp_path / "link").symlink_to(src)
    assert prepare_data.main([str(src), str(tmp_path / "link")]) == 2
    assert "is SRC_DATA_DIR" in capsys.readouterr().err
    assert sorted(p.name for p in src.iterdir()) == ["train.csv"] and (src / "train.csv").read_text() == "a.mp4 0\n"
