"""Every file rs3d reads or writes goes through iopath's g_pathmgr: data, configs, checkpoints and outputs on a
handler registered here (an object-store-like ``rs3dtest://`` prefix that plain ``open()`` cannot reach), and
read-only over HTTP from a server on 127.0.0.1."""
import functools
import http.server
import json
import logging
import os
import re
import shutil
import threading

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, TINY, moving_frames, write_h264
from iopath.common.file_io import HTTPURLHandler, PathHandler, g_pathmgr

from rs3d.checkpoint import CheckpointManager, load_checkpoint
from rs3d.checkpoint.io import save_atomic, verify_checkpoint
from rs3d.commands import check_data, predict, test, train
from rs3d.config import ConfigError, load_config
from rs3d.data import load_class_names_for, load_records
from rs3d.data.annotations import drop_or_fail_missing, read_class_folders, read_slowfast_csv
from rs3d.data.decoders import PyAVReader, VideoDecodeError, open_video, probe_video
from rs3d.data.metadata import load_metadata, save_metadata
from rs3d.engine.monitor import LogFileHandler
from rs3d.utils import paths
from rs3d.utils.appending import append_text, open_append
from rs3d.utils.atomic import atomic_path, atomic_write_text

ROOT = REPO_ROOT
TOY_CFG = os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml")
PREFIX = "rs3dtest://"


class MappedHandler(PathHandler):
    """``rs3dtest://<key>`` -> ``<root>/<key>``, behaving like an object store: no append, a download for a local
    path. Records the paths it opened, so a test can tell which reads went through it."""

    def __init__(self, root: str):
        super().__init__()
        self.root, self.opened = root, []
        self.cache = os.path.join(root, ".downloads")

    def _get_supported_prefixes(self):
        return [PREFIX]

    def _local(self, path: str) -> str:
        assert path.startswith(PREFIX), path
        return os.path.join(self.root, "store", path[len(PREFIX):].lstrip("/"))

    def _open(self, path, mode="r", buffering=-1, **kwargs):
        if "a" in mode or "+" in mode:
            raise OSError(f"{path}: this store cannot append or update ({mode})")
        self.opened.append(path)
        return open(self._local(path), mode, **kwargs)

    def _get_local_path(self, path, force=False, **kwargs):
        copy = os.path.join(self.cache, path[len(PREFIX):])
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        shutil.copyfile(self._local(path), copy)
        return copy

    def _copy_from_local(self, local_path, dst_path, overwrite=False, **kwargs):
        if os.path.exists(self._local(dst_path)) and not overwrite:
            return False
        os.makedirs(os.path.dirname(self._local(dst_path)), exist_ok=True)
        shutil.copyfile(local_path, self._local(dst_path))
        return True

    def _copy(self, src_path, dst_path, overwrite=False, **kwargs):
        return self._copy_from_local(self._local(src_path), dst_path, overwrite)

    def _mv(self, src_path, dst_path, **kwargs):
        os.replace(self._local(src_path), self._local(dst_path))
        return True

    def _exists(self, path, **kwargs):
        return os.path.exists(self._local(path))

    def _isfile(self, path, **kwargs):
        return os.path.isfile(self._local(path))

    def _isdir(self, path, **kwargs):
        return os.path.isdir(self._local(path))

    def _ls(self, path, **kwargs):
        return os.listdir(self._local(path))

    def _mkdirs(self, path, **kwargs):
        os.makedirs(self._local(path), exist_ok=True)

    def _rm(self, path, **kwargs):
        os.remove(self._local(path))


@pytest.fixture()
def store(tmp_path, monkeypatch):
    """The ``rs3dtest://`` handler on a temporary folder, registered for the test. The working directory holds a
    *file* named ``rs3dtest:``, so any code that treats an ``rs3dtest://`` path as a local one fails loudly."""
    handler = MappedHandler(str(tmp_path / "handler"))
    g_pathmgr.register_handler(handler)
    work = tmp_path / "cwd"
    work.mkdir()
    (work / "rs3dtest:").write_text("not a folder\n")
    monkeypatch.chdir(work)
    yield handler
    root = logging.getLogger()
    for log_file in [h for h in root.handlers if isinstance(h, LogFileHandler)]:  # a command's log.txt there
        log_file.close()
        root.removeHandler(log_file)
    g_pathmgr._path_handlers.pop(PREFIX, None)


def upload_folder(local: str, target: str) -> None:
    for folder, _, files in os.walk(local):
        for name in files:
            src = os.path.join(folder, name)
            g_pathmgr.copy_from_local(src, os.path.join(target, os.path.relpath(src, local)), overwrite=True)


# ---------------------------------------------------------------- the parts, on the handler
def test_paths_keep_uris_and_see_registered_prefixes(store):
    assert paths.is_local("a/b.mp4") and not paths.is_local("rs3dtest://a") and not paths.is_local("s3://b/k")
    assert paths.absolute("s3://bucket/x.yaml") == "s3://bucket/x.yaml"  # os.path.abspath gave <cwd>/s3:/bucket/...
    assert paths.absolute("x.yaml") == os.path.abspath("x.yaml")
    assert paths.relative("rs3dtest://d/videos/a.mp4", "rs3dtest://d") == "videos/a.mp4"
    g_pathmgr._path_handlers.pop(PREFIX)
    assert paths.is_local("/checkpoint/x") and not paths.is_local("rs3dtest://x")  # a URI even when unregistered
    with pytest.raises(paths.NoHandlerError, match=r"^rs3dtest://x/a.txt: no iopath handler is registered for "
                                                   r"rs3dtest://"):
        atomic_write_text("rs3dtest://x/a.txt", "text")  # iopath alone would write ./rs3dtest:/x/a.txt
    g_pathmgr.register_handler(store)


def test_atomic_writes_land_whole_and_appends_continue(store):
    atomic_write_text("rs3dtest://out/sub/a.txt", "hello\n")
    assert paths.read_text("rs3dtest://out/sub/a.txt") == "hello\n"
    with pytest.raises(RuntimeError), atomic_path("rs3dtest://out/sub/a.txt") as tmp:
        open(tmp, "w").write("half")
        raise RuntimeError("killed mid-write")
    assert paths.read_text("rs3dtest://out/sub/a.txt") == "hello\n"  # the failed write never reached the store
    with atomic_path("rs3dtest://out/folder") as tmp:  # a whole folder, uploaded file by file
        os.makedirs(os.path.join(tmp, "x"))
        open(os.path.join(tmp, "x", "f.txt"), "w").write("f")
    assert paths.ls("rs3dtest://out/folder/x") == ["f.txt"]
    with open_append("rs3dtest://out/log.txt") as f:  # the store cannot append: a synced local copy
        f.write("one\n")
    with open_append("rs3dtest://out/log.txt", sync_seconds=0) as f:
        f.write("two\n")
        f.flush()
        assert paths.read_text("rs3dtest://out/log.txt") == "one\ntwo\n"  # flushed and uploaded before close
    append_text("rs3dtest://out/log.txt", "three\n")
    assert paths.read_text("rs3dtest://out/log.txt") == "one\ntwo\nthree\n"


def test_checkpoints_save_verify_resume_and_prune_on_the_handler(store):
    manager = CheckpointManager("rs3dtest://run/checkpoints", keep_last=2)
    for epoch in (1, 2, 3):
        manager.save(epoch, {"epoch": epoch, "w": torch.full((3,), float(epoch))}, is_best=epoch == 2)
    assert paths.ls("rs3dtest://run/checkpoints") == [
        "checkpoint_best.pyth", "checkpoint_best.pyth.sha256", "checkpoint_epoch_00002.pyth",
        "checkpoint_epoch_00002.pyth.sha256", "checkpoint_epoch_00003.pyth", "checkpoint_epoch_00003.pyth.sha256"]
    assert load_checkpoint(manager.best_path)["epoch"] == 2
    newest = manager.path_for(3)
    with paths.open_file(newest, "rb") as f:
        data = f.read()
    g_pathmgr.copy_from_local(_write(store.root, "cut.pyth", data[: len(data) // 2]), newest, overwrite=True)
    assert verify_checkpoint(newest) == "checksum mismatch (truncated or damaged)"
    path, state = manager.load_latest()  # the damaged newest is skipped, as on local disk
    assert path == manager.path_for(2) and state["epoch"] == 2
    manager.save(3, {"epoch": 3})  # the damaged file is set aside, not overwritten
    assert paths.isfile(newest + ".damaged") and load_checkpoint(newest)["epoch"] == 3
    save_atomic({"x": 1}, "rs3dtest://elsewhere/plain.pyth")  # no checksum asked: no marker
    assert not paths.exists("rs3dtest://elsewhere/plain.pyth.sha256")


def _write(folder: str, name: str, data: bytes) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_configs_with_a_relative_base_load_from_the_handler(store):
    atomic_write_text("rs3dtest://cfg/base.yaml", "SOLVER:\n  BASE_LR: 0.3\nDATA:\n  NUM_FRAMES: 4\n")
    atomic_write_text("rs3dtest://cfg/sub/child.yaml", "_BASE_: ../base.yaml\nSOLVER:\n  MAX_EPOCH: 7\n")
    cfg = load_config("rs3dtest://cfg/sub/child.yaml", ["DATA.SAMPLING_RATE", "3"])
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCH, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == (0.3, 7, 4, 3)
    with pytest.raises(ConfigError, match=r"^rs3dtest://cfg/missing.yaml: config file not found$"):
        load_config("rs3dtest://cfg/missing.yaml")


def test_videos_decode_through_the_handler_exactly_as_from_disk(store, tmp_path):
    local = write_h264(str(tmp_path / "v.mp4"), moving_frames(30))
    remote = "rs3dtest://videos/v.mp4"
    g_pathmgr.copy_from_local(local, remote)
    assert probe_video(remote) == probe_video(local)
    for backend in ("decord", "pyav"):
        frames = open_video(remote, backend, (24, 32)).get_frames([0, 7, 29])
        np.testing.assert_array_equal(frames, open_video(local, backend, (24, 32)).get_frames([0, 7, 29]))
    reader = PyAVReader(remote)
    assert sum(1 for _ in reader._frames_by_count()) == 30  # reopened from the start of the same file object
    np.testing.assert_array_equal(reader.get_frames([5]), PyAVReader(local).get_frames([5]))
    reader.close()
    assert remote in store.opened
    with pytest.raises(VideoDecodeError, match="file not found"):
        open_video("rs3dtest://videos/gone.mp4")


def test_class_folders_csvs_and_stream_facts_on_the_handler(store, toy_dir, capsys):
    upload_folder(os.path.join(toy_dir, "videos"), "rs3dtest://data/videos")
    records, names = read_class_folders("rs3dtest://data/videos", "train")
    local, local_names = read_class_folders(os.path.join(toy_dir, "videos"), "train")
    assert names == local_names and len(records) == len(local) == 24
    assert [r.path for r in records] == [r.path.replace(os.path.join(toy_dir, "videos"), "rs3dtest://data/videos")
                                         for r in local]
    g_pathmgr.copy_from_local(os.path.join(toy_dir, "train.csv"), "rs3dtest://data/train.csv")
    csv = read_slowfast_csv("rs3dtest://data/train.csv", "rs3dtest://data")
    assert drop_or_fail_missing(csv) == csv and csv[0].path.startswith("rs3dtest://data/videos/train/")
    # A CSV dataset whose DATA.PATH_TO_DATA_DIR is on the handler, as the loaders read it.
    g_pathmgr.copy_from_local(os.path.join(toy_dir, "classnames.json"), "rs3dtest://data/classnames.json")
    cfg = load_config(TOY_CFG, [*TINY, "DATA.PATH_TO_DATA_DIR", "rs3dtest://data"])
    assert [r.path for r in load_records(cfg, "train")] == [r.path for r in csv]
    local_cfg = load_config(TOY_CFG, [*TINY, "DATA.PATH_TO_DATA_DIR", toy_dir])
    assert load_class_names_for(cfg) == load_class_names_for(local_cfg) and len(local_names) == 8
    save_metadata("rs3dtest://data/train.meta.json", [])  # the metadata file itself lives on the handler
    assert load_metadata("rs3dtest://data/train.meta.json", [r.path for r in csv]) == {}
    # rs3d-check-data on the handler: its worker processes (forkserver) get the parent's handler.
    assert check_data.main(["rs3dtest://data/videos", "--split", "val", "--workers", "1", "--num-frames", "4"]) == 0
    assert re.search(r"\| ok +\| 8 +\|", capsys.readouterr().out)
    assert len(paths.read_text("rs3dtest://data/videos/val.clean.csv").splitlines()) == 8


# ---------------------------------------------------------------- a whole run on the handler (~3 s)
def test_train_resume_test_and_predict_with_data_and_outputs_on_the_handler(store, toy_dir, capsys):
    upload_folder(os.path.join(toy_dir, "videos"), "rs3dtest://data/videos")
    common = ["--cfg", TOY_CFG, *TINY, "TRAIN.EVAL_PERIOD", "0", "TEST.NUM_ENSEMBLE_VIEWS", "1",
              "OUTPUT_DIR", "rs3dtest://run", "MODEL.NUM_CLASSES", "0"]
    folders = ["DATA.PATH_TO_DATA_DIR", "rs3dtest://data/videos"]  # train/ val/ test/ class folders
    assert train.main([*common, *folders, "SOLVER.MAX_EPOCH", "1", "TEST.ENABLE", "False"]) == 0
    run = "rs3dtest://run"
    assert paths.ls(f"{run}/checkpoints") == ["checkpoint_best.pyth", "checkpoint_best.pyth.sha256",
                                              "checkpoint_epoch_00001.pyth", "checkpoint_epoch_00001.pyth.sha256"]
    assert verify_checkpoint(f"{run}/checkpoints/checkpoint_epoch_00001.pyth") is None
    assert "NUM_CLASSES: 8" in paths.read_text(f"{run}/config.yaml")  # counted from the class folders there
    assert any(name.startswith("events.out.tfevents") for name in paths.ls(f"{run}/tensorboard"))
    first_metrics = paths.read_text(f"{run}/metrics.jsonl").splitlines()
    assert any('"split": "train"' in line for line in first_metrics)

    assert train.main(["--allow-changes", *common, *folders, "SOLVER.MAX_EPOCH", "2"]) == 0  # resumes, then tests
    metrics = [json.loads(line) for line in paths.read_text(f"{run}/metrics.jsonl").splitlines()]
    assert len(metrics) > len(first_metrics) and metrics[: len(first_metrics)] == [json.loads(x) for x in first_metrics]
    assert "resum" in paths.read_text(f"{run}/log.txt").lower()
    assert load_checkpoint(f"{run}/checkpoints/checkpoint_epoch_00002.pyth")["epoch"] == 2
    assert json.loads(paths.read_text(f"{run}/test_val.json"))["num_videos"] == 8
    assert any(path.endswith(".mp4") for path in store.opened)  # the videos were read through the handler

    # rs3d-test with the CSVs on local disk and DATA.PATH_PREFIX on the handler: the videos come from there.
    store.opened.clear()
    assert test.main([*common, "DATA.PATH_TO_DATA_DIR", toy_dir, "DATA.PATH_PREFIX", "rs3dtest://data",
                      "TRAIN.ENABLE", "False", "TEST.SPLIT", "test"]) == 0
    written = paths.read_text(f"{run}/predictions_test.csv").splitlines()
    assert len(written) == 9 and written[1].startswith("rs3dtest://data/videos/test/")
    assert len({path for path in store.opened if path.endswith(".mp4")}) == 8

    assert predict.main(["--checkpoint", f"{run}/model_final.pyth", "rs3dtest://data/videos/test",
                         "--output", f"{run}/predictions.json", "--topk", "2"]) == 0
    predictions = json.loads(paths.read_text(f"{run}/predictions.json"))
    assert len(predictions) == 8 and all(len(p["top"]) == 2 and "error" not in p for p in predictions)
    assert not os.path.exists("rs3dtest:/run")  # nothing bypassed the handler into the working directory


# ---------------------------------------------------------------- read-only over HTTP
@pytest.fixture()
def http_root(tmp_path, monkeypatch):
    """A folder served by http.server on 127.0.0.1 (in a thread), with iopath's HTTP handler registered."""
    root = tmp_path / "served"
    root.mkdir()
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "http_cache"))  # where iopath caches downloads
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    handler = HTTPURLHandler()
    g_pathmgr.register_handler(handler)
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    for prefix in handler._get_supported_prefixes():
        g_pathmgr._path_handlers.pop(prefix, None)
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_config_csv_checkpoint_and_video_read_over_http(http_root, tmp_path):
    root, url = http_root
    (root / "cfg").mkdir()
    (root / "cfg" / "base.yaml").write_text("DATA:\n  NUM_FRAMES: 6\n")
    (root / "cfg" / "child.yaml").write_text("_BASE_: base.yaml\nSOLVER:\n  BASE_LR: 0.2\n")
    cfg = load_config(f"{url}/cfg/child.yaml")
    assert (cfg.DATA.NUM_FRAMES, cfg.SOLVER.BASE_LR) == (6, 0.2)
    with pytest.raises(ConfigError, match=r"^http://127\.0\.0\.1:\d+/cfg/nope.yaml: cannot read the config"):
        load_config(f"{url}/cfg/nope.yaml")

    local = write_h264(str(root / "clip.mp4"), moving_frames(20))
    (root / "train.csv").write_text("clip.mp4 1\n")
    [record] = drop_or_fail_missing(read_slowfast_csv(f"{url}/train.csv", url))
    assert record.path == f"{url}/clip.mp4" and record.label == 1
    assert probe_video(record.path) == probe_video(local)
    np.testing.assert_array_equal(open_video(record.path).get_frames([0, 19]), open_video(local).get_frames([0, 19]))

    torch.save({"w": torch.arange(3)}, root / "weights.pyth")
    assert torch.equal(load_checkpoint(f"{url}/weights.pyth")["w"], torch.arange(3))
