"""One run per output folder, and reruns that continue the same run or refuse before touching it (issue 25, items
1 and 2): the lock's holder, stale locks, the rerun rule, and two real rs3d-train processes on one folder."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_cfg, train_cmd

from rs3d.checkpoint import load_checkpoint
from rs3d.engine.rerun import RerunRefusedError, check_rerun, record_changes
from rs3d.engine.run_lock import LOCK_NAME, RunLock, RunLockedError


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_lock_refuses_and_names_its_holder(tmp_path):
    holder = {"host": socket.gethostname(), "pid": os.getppid(), "started": time.time(), "refreshed": time.time()}
    (tmp_path / LOCK_NAME).write_text(json.dumps(holder))
    with pytest.raises(RunLockedError, match=rf"in use by another run \(host .*, PID {os.getppid()}, since"):
        RunLock(str(tmp_path)).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text()) == holder  # untouched


@pytest.mark.parametrize("holder", [
    {"host": socket.gethostname(), "pid": "DEAD", "started": time.time(), "refreshed": time.time()},
    {"host": "another-host", "pid": 1, "started": 0.0, "refreshed": time.time() - 3600},
])
def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, holder, caplog):
    holder = dict(holder, pid=dead_pid() if holder["pid"] == "DEAD" else holder["pid"])
    (tmp_path / LOCK_NAME).write_text(json.dumps(holder))
    lock = RunLock(str(tmp_path))
    lock.acquire()
    assert "taking over the lock of a run that is gone" in caplog.text
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_lock_is_refreshed_while_the_run_lives(tmp_path):
    with RunLock(str(tmp_path), refresh_s=0.05) as lock:
        first = json.loads((tmp_path / LOCK_NAME).read_text())["refreshed"]
        time.sleep(0.3)
        assert json.loads((tmp_path / LOCK_NAME).read_text())["refreshed"] > first
        assert lock.holder()["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_rerun_rule(toy_dir, tmp_path):
    cfg = tiny_cfg(toy_dir, tmp_path)
    assert check_rerun(cfg, str(tmp_path)) == {}  # a new folder
    (tmp_path / "config.yaml").write_text(cfg.dump())
    assert check_rerun(cfg, str(tmp_path)) == {}  # the same run again: a resume
    wider = tiny_cfg(toy_dir, tmp_path, "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.25")
    with pytest.raises(RerunRefusedError, match=r"another model or data \(MODEL.RESNET3D.WIDTH_MULTIPLIER 0.125 -> "
                                                r"0.25\); give a new OUTPUT_DIR"):
        check_rerun(wider, str(tmp_path), allow_changes=True)
    longer = tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "20", "DATA_LOADER.NUM_WORKERS", "2")
    with pytest.raises(RerunRefusedError, match=r"other settings \(SOLVER.MAX_EPOCH 12 -> 20\); pass --allow-changes"):
        check_rerun(longer, str(tmp_path))
    changes = check_rerun(longer, str(tmp_path), allow_changes=True)
    assert changes == {"DATA_LOADER.NUM_WORKERS": [0, 2], "SOLVER.MAX_EPOCH": [12, 20]}
    record_changes(str(tmp_path), changes, step=30)
    record = json.loads((tmp_path / "config_history.jsonl").read_text())
    assert record["step"] == 30 and record["changes"]["SOLVER.MAX_EPOCH"] == [12, 20]


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_two_runs_on_one_folder_and_a_changed_rerun(toy_dir, tmp_path):
    """The second rs3d-train on a busy folder exits 2 at once with one error line; the first ends with the weights
    of an undisturbed run. A rerun with another width is refused without changing a single file."""
    opts = ["SOLVER.MAX_EPOCH", "8", "TRAIN.EVAL_PERIOD", "8"]  # long enough for the second to start meanwhile
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.Popen(train_cmd(toy_dir, tmp_path / "run", *opts), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "run" / LOCK_NAME).exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.1)
    started = time.time()
    second = subprocess.run(train_cmd(toy_dir, tmp_path / "run", *opts), env=env, capture_output=True, text=True,
                            timeout=120)
    assert first.poll() is None, "the first run ended before the second started: the test proves nothing"
    assert second.returncode == 2 and time.time() - started < 60
    lines = second.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "is in use by another run" in lines[-1] and "Traceback" not in second.stderr
    assert first.wait(timeout=600) == 0, first.stderr.read()[-2000:]
    undisturbed = subprocess.run(train_cmd(toy_dir, tmp_path / "alone", *opts), env=env, capture_output=True,
                                 text=True, timeout=600)
    assert undisturbed.returncode == 0, undisturbed.stderr[-2000:]
    name = "checkpoints/checkpoint_epoch_00008.pyth"
    a, b = (load_checkpoint(str(tmp_path / d / name))["model"] for d in ("run", "alone"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    before = digest(tmp_path / "run")
    changed = subprocess.run(train_cmd(toy_dir, tmp_path / "run", *opts, "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.25"),
                             env=env, capture_output=True, text=True, timeout=120)
    assert changed.returncode == 2 and "another model or data" in changed.stderr.strip().splitlines()[-1]
    assert digest(tmp_path / "run") == before
