"""Atomic writes (rs3d/utils/atomic.py) under real failures: a writer process killed halfway through a large file,
and a final rename that fails, for new files and for overwrites in place (checkpoint_best.pyth, its .sha256,
reports); the data is fsynced before the rename. The expectation is always the file system's own state: the
target holds its old bytes (or does not exist) and no temporary file is left where a reader could pick it up."""
import os
import signal
import subprocess
import sys

import pytest
import torch

import rs3d
from rs3d.checkpoint.io import CheckpointSaveError, load_checkpoint
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.evaluation.reports import write_confusion_matrix, write_predictions
from rs3d.utils.atomic import atomic_open, atomic_write_text

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(rs3d.__file__)))  # the rs3d under test

# A writer that announces the first 8 MiB of a 256 MiB file, then keeps writing slowly until it is killed.
WRITER = """
import sys, time
from rs3d.utils.atomic import atomic_open
with atomic_open(sys.argv[1], "wb") as f:
    block = b"n" * (1 << 20)
    for i in range(256):
        f.write(block)
        if i == 7:
            f.flush()
            print("halfway", flush=True)
        if i >= 7:
            time.sleep(0.05)
"""


def _kill_writer_halfway(target):
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "halfway"
        hidden = [n for n in os.listdir(os.path.dirname(target)) if n.startswith(".")]
        assert hidden and os.path.getsize(os.path.join(os.path.dirname(target), hidden[0])) >= 8 << 20
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_a_writer_killed_mid_file_leaves_no_new_file(tmp_path):
    target = tmp_path / "report.bin"
    _kill_writer_halfway(target)
    assert not target.exists()  # only the hidden temporary file, never matched by a reader
    assert all(name.startswith(".report.bin.") for name in os.listdir(tmp_path))


def test_a_writer_killed_mid_overwrite_keeps_the_old_file(tmp_path):
    target = tmp_path / "checkpoint_best.pyth"
    target.write_bytes(b"old complete file")
    _kill_writer_halfway(target)
    assert target.read_bytes() == b"old complete file"


class RenameFails:
    """``os.replace`` that raises for targets whose name ends with one of ``names`` (and works for the others)."""

    def __init__(self, monkeypatch, *names):
        self.names, self.real, self.refused = names, os.replace, []
        monkeypatch.setattr(os, "replace", self)

    def __call__(self, src, dst, **kwargs):
        if os.fspath(dst).endswith(self.names):
            self.refused.append(os.fspath(dst))
            raise OSError(5, "Input/output error")
        return self.real(src, dst, **kwargs)


def test_a_failed_rename_of_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    failing = RenameFails(monkeypatch, "new.txt")
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "new.txt", "x" * 100_000)
    assert failing.refused == [str(tmp_path / "new.txt")]
    assert os.listdir(tmp_path) == []  # the temporary file is removed too


def test_a_failed_rename_keeps_the_old_reports(tmp_path, monkeypatch):
    predictions, confusion = tmp_path / "predictions_val.csv", tmp_path / "confusion_val.csv"
    predictions.write_text("old predictions\n")
    confusion.write_text("old confusion\n")
    RenameFails(monkeypatch, ".csv")
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(OSError):
        write_predictions(predictions, ["a.mp4", "b.mp4"], scores, torch.tensor([0, 1]), ["x", "y"], topk=2)
    with pytest.raises(OSError):
        write_confusion_matrix(confusion, torch.eye(2, dtype=torch.long), ["x", "y"])
    assert predictions.read_text() == "old predictions\n" and confusion.read_text() == "old confusion\n"
    assert sorted(os.listdir(tmp_path)) == ["confusion_val.csv", "predictions_val.csv"]


@pytest.mark.parametrize("failing_name", ["checkpoint_best.pyth", "checkpoint_best.pyth.sha256"])
def test_a_failed_rename_keeps_the_old_best_checkpoint_and_its_checksum(tmp_path, monkeypatch, failing_name):
    manager = CheckpointManager(str(tmp_path), keep_last=5)
    manager.save(1, {"epoch": 1, "w": torch.ones(1000)}, is_best=True)
    best = tmp_path / "checkpoint_best.pyth"
    old_best, old_sum = best.read_bytes(), (tmp_path / "checkpoint_best.pyth.sha256").read_bytes()
    failing = RenameFails(monkeypatch, failing_name)
    with pytest.raises(CheckpointSaveError):
        manager.save(2, {"epoch": 2, "w": torch.zeros(1000)}, is_best=True)
    assert failing.refused
    assert (tmp_path / "checkpoint_best.pyth.sha256").read_bytes() == old_sum  # whole old checksum, never half
    if failing_name.endswith(".pyth"):
        assert best.read_bytes() == old_best
    else:  # the new best landed, and the stale checksum marks it unverified (never a half-written marker)
        assert load_checkpoint(str(best))["epoch"] == 2
    assert load_checkpoint(str(tmp_path / "checkpoint_epoch_00002.pyth"))["epoch"] == 2
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary file left behind


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else "?"
        events.append(("fsync", os.path.basename(path), os.path.isdir(path)))
        return real_fsync(fd)

    def replace(src, dst, **kwargs):
        events.append(("replace", os.path.basename(os.fspath(dst)), False))
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_open(tmp_path / "out.csv") as f:
        f.write("a,b\n")
    files = [i for i, (kind, name, is_dir) in enumerate(events) if kind == "fsync" and not is_dir]
    renames = [i for i, (kind, name, _) in enumerate(events) if kind == "replace" and name == "out.csv"]
    assert files and renames and files[0] < renames[0], events  # the temporary file's data, then the rename
    assert events[files[0]][1].startswith(".out.csv.")
    assert any(kind == "fsync" and is_dir for kind, _, is_dir in events[renames[0]:]), events  # then the folder
    assert (tmp_path / "out.csv").read_text() == "a,b\n"

