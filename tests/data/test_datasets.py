"""Annotation readers, clip datasets (bad files, fallback, single decode), loaders and normalisation."""
import json
import shutil

import pytest
import torch

from rs3d.config import get_cfg
from rs3d.config.loader import ConfigError
from rs3d.data import (
    AnnotationError,
    ClipNormalizer,
    ClipSpec,
    SkipTracker,
    TestClipDataset,
    TrainClipDataset,
    VideoRecord,
    build_loader,
    collate_clips,
    load_class_names_for,
    load_records,
)
from rs3d.data import dataset as dataset_module
from rs3d.data.annotations import read_kinetics_csv, read_slowfast_csv
from rs3d.data.dataset import replacement_index
from rs3d.data.transforms import TestClipTransform, TrainClipTransform

BAD = ["missing", "empty", "text", "audio_only", "truncated"]  # never decodable


def test_slowfast_csv(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("a/x.mp4 0\n\nb/y z.mp4 2\n")
    records = read_slowfast_csv(str(csv), "/data", num_classes=3)
    assert [(r.path, r.label) for r in records] == [("/data/a/x.mp4", 0), ("/data/b/y z.mp4", 2)]
    assert records[1].source == f"{csv}:3"
    csv.write_text("a.mp4,1\n")
    assert read_slowfast_csv(str(csv), "", separator=",")[0].label == 1


@pytest.mark.parametrize("text,message", [
    ("a.mp4 0\njustonefield\n", ":2: expected 'path label'"),
    ("a.mp4 0\nb.mp4 5\n", ":2: label 5 out of range [0, 3)"),
    ("a.mp4 x\n", ":1: label must be an integer"),
])
def test_slowfast_csv_errors_name_file_and_line(tmp_path, text, message):
    csv = tmp_path / "val.csv"
    csv.write_text(text)
    with pytest.raises(AnnotationError, match=str(csv).replace(".", r"\.") + message.replace("[", r"\[")
                       .replace(")", r"\)").replace("(", r"\(")):
        read_slowfast_csv(str(csv), num_classes=3)


def test_official_kinetics_csv(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n"
                   "air drumming,abc,5,15,train\nabseiling,xyz,0,10,train\n")
    cfg = _cfg(tmp_path, num_classes=2)
    names = load_class_names_for(cfg)
    assert names == ["abseiling", "air drumming"]
    records = read_kinetics_csv(str(csv), "/k400", names)
    assert records[0] == VideoRecord("/k400/train/air drumming/abc_000005_000015.mp4", 1, f"{csv}:2")
    underscored = read_kinetics_csv(str(csv), "/k", names, "{split}/{label_}/{youtube_id}.mp4")
    assert underscored[0].path == "/k/train/air_drumming/abc.mp4"
    csv.write_text("label,youtube_id,time_start,time_end,split\nbowling,q,0,10,train\n")
    with pytest.raises(AnnotationError, match=r"train.csv:2: unknown class 'bowling'"):
        read_kinetics_csv(str(csv), "/k400", names)


def test_missing_files_stop_or_drop(tmp_path, video_dir):
    shutil.copy(video_dir["good"], tmp_path / "a.mp4")
    (tmp_path / "train.csv").write_text("a.mp4 0\ngone.mp4 1\n")
    (tmp_path / "classnames.json").write_text(json.dumps({"x": 0, "y": 1}))
    cfg = _cfg(tmp_path, num_classes=2)
    with pytest.raises(AnnotationError, match=r"1 of 2 videos are missing: .*gone.mp4 \(.*train.csv:2\)"):
        load_records(cfg, "train")
    cfg.DATA.MISSING_FILES = "drop"
    assert [r.label for r in load_records(cfg, "train")] == [0]
    cfg.MODEL.NUM_CLASSES = 3
    with pytest.raises(ConfigError, match="NUM_CLASSES: 3, but .*classnames.json lists 2"):
        load_class_names_for(cfg)


def test_bad_videos_are_replaced_and_reported(video_dir):
    records = [VideoRecord(video_dir[k], i) for i, k in enumerate(["good"] + BAD)]
    ds = TrainClipDataset(records, ClipSpec(8, 2), TrainClipTransform(32, randaug_layers=1), max_retries=20)
    for index, kind in enumerate(BAD, start=1):
        sample = ds[index]
        assert sample["video"].shape == (1, 3, 8, 32, 32) and sample["video"].dtype == torch.uint8
        failed = [path for path, _ in sample["failures"]]
        assert failed[0] == video_dir[kind] and sample["index"] != index
        assert ds.records[sample["index"]].path not in failed
        assert replacement_index(index, 3, len(ds)) == replacement_index(index, 3, len(ds)) != index


def test_partly_damaged_video_gives_clips_from_its_readable_part(video_dir):
    ds = TrainClipDataset([VideoRecord(video_dir["damaged"], 0), VideoRecord(video_dir["good"], 1)], ClipSpec(4, 2),
                          TrainClipTransform(16))
    torch.manual_seed(0)
    samples = [ds[0] for _ in range(10)]
    # decord refuses the file; PyAV decodes up to the damage, and clips are re-drawn inside that part.
    assert all(s["index"] == 0 and s["failures"] == [] for s in samples)


def test_too_many_bad_videos_stop_with_a_clear_error(video_dir):
    ds = TrainClipDataset([VideoRecord(video_dir[k], 0) for k in BAD], ClipSpec(4, 1), TrainClipTransform(16),
                          max_retries=3)
    with pytest.raises(RuntimeError, match="4 videos in a row failed to decode.*check_dataset"):
        ds[0]


def test_fallback_decodes_what_decord_refuses(video_dir):
    spec = ClipSpec(8, 4)
    ds = TrainClipDataset([VideoRecord(video_dir["truncated_faststart"], 0)], spec, TrainClipTransform(32))
    torch.manual_seed(0)
    for _ in range(5):
        sample = ds[0]
        assert sample["failures"] == [] and sample["index"] == 0
    only_decord = TrainClipDataset(ds.records, spec, TrainClipTransform(32), backends=("decord",), max_retries=0)
    with pytest.raises(RuntimeError):
        only_decord[0]


def test_test_views_come_from_one_decode(video_dir, monkeypatch):
    calls = []
    real = dataset_module.open_video

    def counting_open(*args, **kwargs):
        reader = real(*args, **kwargs)
        get = reader.get_frames
        reader.get_frames = lambda idx: calls.append(len(idx)) or get(idx)
        return reader

    monkeypatch.setattr(dataset_module, "open_video", counting_open)
    records = [VideoRecord(video_dir["good"], 3), VideoRecord(video_dir["text"], 1)]
    ds = TestClipDataset(records, ClipSpec(8, 2), TestClipTransform(32, 3), num_clips=10)
    good = ds[0]
    assert good["video"].shape == (30, 3, 8, 32, 32) and good["valid"]
    assert len(calls) == 1 and 8 < calls[0] <= 60  # one decode of the union of 10 overlapping clips
    bad = ds[1]
    assert not bad["valid"] and bad["failures"][0][0] == video_dir["text"] and bad["video"].shape == (30, 3, 8, 32, 32)
    batch = collate_clips([good, bad])
    assert batch["video"].shape == (2, 30, 3, 8, 32, 32) and batch["valid"].tolist() == [True, False]
    assert batch["label"].tolist() == [3, 1]


def test_repeated_augmentation_cuts_several_clips_from_one_decode(video_dir):
    ds = TrainClipDataset([VideoRecord(video_dir["good"], 5)], ClipSpec(8, 2), TrainClipTransform(32),
                          clips_per_video=3)
    batch = collate_clips([ds[0], ds[0]])
    assert batch["video"].shape == (6, 3, 8, 32, 32) and batch["label"].tolist() == [5] * 6
    assert not torch.equal(batch["video"][0], batch["video"][1])  # independent boxes and starts


def test_two_worker_loader_with_a_bad_file(tmp_path, video_dir):
    names = ["good", "good2", "fps15", "portrait", "short", "damaged", "text"]
    lines = []
    for i, kind in enumerate(names):
        shutil.copy(video_dir[kind], tmp_path / f"{kind}.mp4")
        lines.append(f"{kind}.mp4 {i % 3}")
    for split in ("train", "val"):
        (tmp_path / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "classnames.json").write_text(json.dumps(["a", "b", "c"]))
    cfg = _cfg(tmp_path, num_classes=3)
    cfg.DATA_LOADER.NUM_WORKERS = 2
    cfg.TRAIN.BATCH_SIZE = 2
    tracker = SkipTracker()
    loader = build_loader(cfg, "train")
    seen = 0
    for batch in loader:
        assert batch["video"].shape == (2, 3, 8, 32, 32) and batch["video"].dtype == torch.uint8
        tracker.update(batch["failures"])
        seen += len(batch["label"])
    assert seen == 6  # 7 videos, drop_last
    assert tracker.end_epoch() == 1  # the text file, drawn once (seed 0); the damaged file's clip decodes
    assert list(tracker.reported) == [str(tmp_path / "text.mp4")]
    assert "Invalid data found" in tracker.reported[str(tmp_path / "text.mp4")]  # FFmpeg's own reason
    val = build_loader(cfg, "val", multi_view=True)
    valid = torch.cat([b["valid"] for b in val])
    assert valid.tolist() == [True] * 6 + [False]  # the damaged file still has a readable head
    assert next(iter(val))["video"].shape == (2, 6, 3, 8, 32, 32)  # 2 clips x 3 crops


def test_normaliser_matches_manual_arithmetic():
    video = torch.randint(0, 256, (2, 3, 4, 8, 8), dtype=torch.uint8)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    out = ClipNormalizer(mean, std)(video)
    expected = (video.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ClipNormalizer(mean, std, "unit")(video), video.float() / 255)
    views = ClipNormalizer(mean, std, channels_last=True)(video[None].expand(3, -1, -1, -1, -1, -1))
    assert views.shape == (3, 2, 3, 4, 8, 8)


def _cfg(data_dir, num_classes):
    cfg = get_cfg()
    cfg.DATA.PATH_TO_DATA_DIR = str(data_dir)
    cfg.MODEL.NUM_CLASSES = num_classes
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE = 8, 2
    cfg.DATA.TRAIN_CROP_SIZE = cfg.DATA.TEST_CROP_SIZE = 32
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.BATCH_SIZE = 2, 2
    return cfg


def test_saved_metadata_spares_the_probe(tmp_path, video_dir, monkeypatch):
    from types import SimpleNamespace

    from rs3d.data import build_dataset
    from rs3d.data.decoders import probe_video
    from rs3d.data.metadata import metadata_path, save_metadata

    for kind in ("good", "good2"):
        shutil.copy(video_dir[kind], tmp_path / f"{kind}.mp4")
    (tmp_path / "train.csv").write_text("good.mp4 0\ngood2.mp4 1\n")
    (tmp_path / "classnames.json").write_text(json.dumps(["a", "b"]))
    facts = [SimpleNamespace(path=str(tmp_path / f"{k}.mp4"), readable=True, **probe_video(video_dir[k]).__dict__)
             for k in ("good", "good2")]
    assert save_metadata(metadata_path(str(tmp_path), "train"), facts) == 2
    (tmp_path / "good2.mp4").write_bytes((tmp_path / "good2.mp4").read_bytes() + b"\0")  # changed: stale entry
    cfg = _cfg(tmp_path, num_classes=2)
    dataset = build_dataset(cfg, "train")
    assert list(dataset._info_cache) == [str(tmp_path / "good.mp4")]
    monkeypatch.setattr(dataset_module, "probe_with", lambda path, *_: (_ for _ in ()).throw(AssertionError(path)))
    assert dataset[0]["failures"] == []  # no probe for the video with saved facts


def test_clips_of_prepared_videos_start_on_reference_frames(video_dir, tmp_path, monkeypatch):
    from rs3d.data.prep.reencode import reencode_video

    prepared = str(tmp_path / "prepared.mp4")
    reencode_video(video_dir["good"], prepared)  # every odd frame a skippable B-frame
    asked = []
    real_open = dataset_module.open_video

    def spy(*args, **kwargs):
        reader = real_open(*args, **kwargs)
        get_frames = reader.get_frames
        reader.get_frames = lambda indices: asked.append(list(indices)) or get_frames(indices)
        return reader

    monkeypatch.setattr(dataset_module, "open_video", spy)
    for path, aligned in ((prepared, True), (video_dir["good"], False)):
        asked.clear()
        train = TrainClipDataset([VideoRecord(path, 0)] * 12, ClipSpec(4, 2), TrainClipTransform(16))
        for i in range(12):
            assert train[i]["video"].shape == (1, 3, 4, 16, 16)
        starts = {clip[0] for clip in asked}
        assert len(starts) > 3 and all(all(i % 2 == 0 for i in clip) for clip in asked) == aligned, starts
    asked.clear()
    test = TestClipDataset([VideoRecord(prepared, 0)], ClipSpec(4, 2), TestClipTransform(32, num_crops=1), 5)
    assert test[0]["valid"] and all(i % 2 == 0 for i in asked[0]) and len(asked[0]) > 10
