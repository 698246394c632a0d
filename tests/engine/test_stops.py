"""A stop is not a crash (issue 20): signals sent to the whole process group while the trainer waits on its loader
workers lose no video and resume exactly; a second Ctrl-C quits at once; a NaN never reaches a checkpoint; the loop
cleans up (signal handlers, workers) however it ends; loader workers ignore group signals but obey the trainer."""
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, TINY, tiny_cfg

from rs3d.checkpoint.finite import all_finite, non_finite_parts
from rs3d.checkpoint.io import load_checkpoint
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.engine import HookBase, Trainer
from rs3d.engine.loader_guard import is_decoder_fault
from rs3d.engine.trainer import NonFiniteLossError, NonFiniteStateError

ENV = dict(os.environ, OMP_NUM_THREADS="1")

# The training command with a decoder that takes DECODE_S per video (so the trainer waits on its workers), and,
# with UNSHIELDED set, workers that keep torch's own signal handling (the fallback: workers die of the signal).
SLOW_TRAIN = """
import os, sys, time
from rs3d.data.dataset import TrainClipDataset
real = TrainClipDataset._load
def slow(self, path):
    time.sleep(float(os.environ["DECODE_S"]))
    return real(self, path)
TrainClipDataset._load = slow
if os.environ.get("UNSHIELDED"):
    import rs3d.data.build
    rs3d.data.build.worker_init_fn = lambda: None
from rs3d.commands import base, train
base.run(lambda: train.main(sys.argv[1:]))
"""

OPTS = ["SOLVER.MAX_EPOCH", "2", "TRAIN.BATCH_SIZE", "4", "DATA_LOADER.NUM_WORKERS", "2",
        "TRAIN.CHECKPOINT_PERIOD_ITERS", "1", "TRAIN.EVAL_PERIOD", "0", "TEST.ENABLE", "False",
        "TRAIN.KEEP_CHECKPOINTS", "10"]


def slow_train(toy_dir, out, decode_s=0.1, unshielded=False, *opts):
    """Start the slow training command in a process group of its own (as `timeout` or Slurm would run it)."""
    cmd = [sys.executable, "-c", SLOW_TRAIN, "--cfg", os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml"), *TINY,
           "DATA.PATH_TO_DATA_DIR", toy_dir, "OUTPUT_DIR", str(out), *OPTS, *opts]
    env = dict(ENV, DECODE_S=str(decode_s), **({"UNSHIELDED": "1"} if unshielded else {}))
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc, timeout=240):
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"training did not end: {err[-3000:]}")
    return proc.returncode, err


def wait_for(path, proc, timeout=180):
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert path.exists(), finish(proc)[1][-3000:]


def checkpoint_state(out, name="checkpoint_epoch_00002.pyth"):
    return load_checkpoint(str(out / "checkpoints" / name))


def assert_same_final_weights(a, b):
    for part in ("model",):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), key
    for key, value in a["ema"]["module"].items():
        assert torch.equal(value, b["ema"]["module"][key]), key
    momentum = {k: v["momentum_buffer"] for k, v in a["optimizer"]["state"].items()}
    for key, value in momentum.items():
        assert torch.equal(value, b["optimizer"]["state"][key]["momentum_buffer"]), key
    assert a["step"] == b["step"] == 12


@pytest.fixture(scope="module")
def straight(toy_dir, tmp_path_factory):
    """The uninterrupted run every stopped one is compared with."""
    out = tmp_path_factory.mktemp("straight")
    code, err = finish(slow_train(toy_dir, out))
    assert code == 0, err[-3000:]
    return checkpoint_state(out)


def assert_nothing_lost(out, err):
    assert not (out / "crashed_videos.txt").exists(), (out / "crashed_videos.txt").read_text()
    for text in ("skipped from now on", "skipped unreadable video", "were replaced by others"):
        assert text not in err, err[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, unshielded", [
    (signal.SIGTERM, 75, False),  # the README's statuses, as literals
    (signal.SIGINT, 130, False),
    (signal.SIGTERM, 75, True),  # workers die of the signal: the loader guard's fallback
], ids=["sigterm", "sigint", "sigterm-workers-die"])
def test_a_signal_to_the_process_group_loses_no_video_and_resumes_exactly(toy_dir, tmp_path, straight, sig, code,
                                                                          unshielded):
    # 6 batches of 4 an epoch; each worker decodes one in 3.2 s, worker 0 batches 1 and 3, worker 1 batches 2 and
    # 4: after the second step's checkpoint the trainer waits about 3 s for batch 3.
    proc = slow_train(toy_dir, tmp_path, 0.4, unshielded)
    wait_for(tmp_path / "checkpoints" / "checkpoint_epoch_00000_iter_0000002.pyth.sha256", proc)
    time.sleep(0.5)  # past the rest of that step's hooks: now it waits on the loader
    os.killpg(proc.pid, sig)
    status, err = finish(proc)
    assert status == code, err[-3000:]
    last = err.strip().splitlines()[-1]
    name = signal.Signals(sig).name
    assert last.startswith(f"stopped: {name}: stopped after step") and "run the same command again" in last, last
    assert "Traceback" not in err
    if unshielded:  # the workers were killed by the signal; the guard saw it was not a decoder crash
        assert "killed by SIGTERM) while the run is stopping: not a decoder crash" in err, err[-3000:]
    assert_nothing_lost(tmp_path, err)
    stopped_at = load_checkpoint(last.split(" and wrote ")[1].split(";")[0])
    assert (stopped_at["epoch"], stopped_at["iter"]) == (0, 3)  # mid-epoch: the step it waited for, then the stop
    status, err = finish(slow_train(toy_dir, tmp_path, 0.1, unshielded))
    assert status == 0 and "resumed from" in err, err[-3000:]
    assert_nothing_lost(tmp_path, err)
    assert "skipped 0 unreadable training/validation samples in total" in err
    assert_same_final_weights(straight, checkpoint_state(tmp_path))


@pytest.mark.slow
def test_a_second_ctrl_c_quits_at_once(toy_dir, tmp_path):
    """One worker, 1.5 s per video: after the first step's checkpoint the trainer waits ~6 s for the next batch."""
    proc = slow_train(toy_dir, tmp_path, 1.5, False, "DATA_LOADER.NUM_WORKERS", "1")
    wait_for(tmp_path / "checkpoints" / "checkpoint_epoch_00000_iter_0000001.pyth.sha256", proc)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    sent = time.time()
    status, err = finish(proc)
    assert status == 130 and err.strip().splitlines()[-1] == "interrupted", err[-3000:]
    assert time.time() - sent < 5, "the second Ctrl-C should not wait for the batch being decoded"
    assert "Ctrl-C again quits at once" in err and "Traceback" not in err
    assert not (tmp_path / "checkpoints" / "checkpoint_epoch_00000_iter_0000002.pyth").exists()
    assert not (tmp_path / "crashed_videos.txt").exists()


# ---------------------------------------------------------------- loader workers and group signals
def _shielded_child(ready):
    from rs3d.data.workers import shield_from_stop_signals

    shield_from_stop_signals(0, os.getppid())
    ready.set()
    time.sleep(60)


def test_loader_workers_ignore_group_signals_but_obey_the_trainer():
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_shielded_child, args=(ready,), daemon=True)
    child.start()
    assert ready.wait(20)
    for sig in ("TERM", "INT", "HUP", "USR1"):  # sent by another process, as `timeout` or Slurm would
        subprocess.run(["kill", f"-{sig}", str(child.pid)], check=True)
    time.sleep(0.5)
    assert child.is_alive()
    child.terminate()  # SIGTERM from the process that started it: how torch shuts a worker down
    child.join(10)
    assert child.exitcode == 0


@pytest.mark.parametrize("exitcode, fault", [
    (-signal.SIGSEGV, True), (-signal.SIGBUS, True), (-signal.SIGABRT, True), (-signal.SIGFPE, True), (1, True),
    (-signal.SIGTERM, False), (-signal.SIGINT, False), (-signal.SIGHUP, False), (-signal.SIGKILL, False),
    (-signal.SIGUSR1, False), (0, False), (None, False)])
def test_which_worker_deaths_are_decoder_faults(exitcode, fault):
    assert is_decoder_fault(exitcode) is fault


def _run(toy_dir, out, *opts, hooks=()):
    trainer = Trainer(tiny_cfg(toy_dir, out, "TRAIN.EVAL_PERIOD", "0", "SOLVER.MAX_EPOCH", "1", *opts))
    trainer.register_hooks(hooks)
    trainer.train()
    return trainer


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", "segfault-while-stopping"])
def test_a_worker_death_that_is_not_a_decoder_crash_excludes_nothing(toy_dir, tmp_path, monkeypatch, caplog, how):
    """A worker killed by SIGKILL (the OOM killer), or one that segfaults while the trainer is stopping: the loader
    restarts at the same batch and no video is excluded or replaced."""
    from torch.utils.data import get_worker_info

    from rs3d.data.dataset import TrainClipDataset

    real = TrainClipDataset._load
    marker = tmp_path / "killed_once"

    def dying_load(self, path):
        if path.endswith("move_left_00000.mp4") and get_worker_info() is not None and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL if how == "sigkill" else signal.SIGSEGV)
        return real(self, path)

    monkeypatch.setattr(TrainClipDataset, "_load", dying_load)
    trainer = Trainer(tiny_cfg(toy_dir, tmp_path, "TRAIN.EVAL_PERIOD", "0", "SOLVER.MAX_EPOCH", "1",
                               "DATA_LOADER.NUM_WORKERS", "1"))
    if how != "sigkill":
        trainer.loader_guard.stop_requested = lambda: True  # as if a stop signal had reached the trainer
    with caplog.at_level(logging.WARNING):
        trainer.train()
    assert marker.exists() and trainer.step == 3
    assert not (tmp_path / "crashed_videos.txt").exists() and not trainer.train_loader.dataset.excluded
    assert trainer.skips.total_skips == 0
    expected = "killed by SIGKILL): not a decoder fault" if how == "sigkill" else "while the run is stopping"
    assert expected in caplog.text


# ---------------------------------------------------------------- nothing non-finite is saved
class PoisonAt(HookBase):
    """Puts a NaN into the first conv weight before loader batch ``iteration`` of epoch ``epoch``."""

    def __init__(self, epoch, iteration):
        self.epoch, self.iteration = epoch, iteration

    def before_step(self):
        if (self.trainer.epoch, self.trainer.iter) == (self.epoch, self.iteration):
            with torch.no_grad():
                next(self.trainer.model.parameters()).view(-1)[0] = float("nan")


def is_finite_state(state):
    """Independent of rs3d.checkpoint.finite: a plain per-tensor isfinite."""
    def tensors(obj):
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from tensors(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                yield from tensors(v)
    return all(bool(torch.isfinite(t).all()) for part in ("model", "ema", "optimizer")
               for t in tensors(state.get(part)) if t.is_floating_point())


@pytest.mark.slow
def test_a_nan_in_the_weights_mid_epoch_is_never_checkpointed(toy_dir, tmp_path):
    opts = ["TRAIN.CHECKPOINT_PERIOD_ITERS", "1", "TRAIN.KEEP_CHECKPOINTS", "10"]
    with pytest.raises(NonFiniteLossError) as info:
        _run(toy_dir, tmp_path, *opts, hooks=[PoisonAt(0, 1)])
    assert isinstance(info.value, NonFiniteStateError) and info.value.exit_code == 3
    message = str(info.value)
    assert "by step 2 (epoch 1, iteration 2)" in message and "checkpoint_epoch_00000_iter_0000001.pyth" in message
    manager = CheckpointManager(str(tmp_path / "checkpoints"))
    written = [os.path.basename(p) for p in manager.all()]
    assert written == ["checkpoint_epoch_00000_iter_0000001.pyth"], written
    assert all(is_finite_state(load_checkpoint(p)) for p in manager.all())
    assert not (tmp_path / "model_final.pyth").exists()
    rerun = Trainer(tiny_cfg(toy_dir, tmp_path, "TRAIN.EVAL_PERIOD", "0", "SOLVER.MAX_EPOCH", "1", *opts))
    assert (rerun.start_epoch, rerun.start_iter, rerun.step) == (0, 1, 1)


def test_auto_resume_never_picks_a_non_finite_checkpoint(tmp_path, caplog):
    manager = CheckpointManager(str(tmp_path))
    manager.save(1, {"epoch": 1, "model": {"w": torch.ones(3)}, "optimizer": {"state": {}}})
    manager.save(2, {"epoch": 2, "model": {"w": torch.ones(3)}, "optimizer": {"state": {0: {
        "momentum_buffer": torch.tensor([1.0, float("inf")])}}}})  # written by an older version, say
    with caplog.at_level(logging.WARNING):
        path, state = manager.load_latest()
    assert path == manager.path_for(1) and state["epoch"] == 1
    assert "checkpoint_epoch_00002.pyth (NaN/Inf in its optimizer state)" in caplog.text


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_the_fused_finiteness_check_agrees_with_a_per_tensor_check(dtype):
    gen = torch.Generator().manual_seed(0)
    tensors = [torch.randn(n, generator=gen).to(dtype) * 1e3 for n in (1, 7, 300)]
    tensors.append(torch.full((4,), 6e4).to(dtype) if dtype == torch.float16 else torch.randn(4).to(dtype))
    assert all_finite(tensors) and all(bool(torch.isfinite(t).all()) for t in tensors)  # large but finite
    for bad in (float("nan"), float("inf"), float("-inf")):
        poisoned = [t.clone() for t in tensors]
        poisoned[1][3] = bad
        assert not all_finite(poisoned)
    state = {"model": {"a": tensors[0]}, "ema": None, "optimizer": {"state": {0: {"m": poisoned[1]}}, "lr": 1.0}}
    assert non_finite_parts(state) == ["optimizer"]


# ---------------------------------------------------------------- the loop always cleans up
class Boom(HookBase):
    def after_step(self):
        if self.trainer.step == 2:
            raise RuntimeError("boom in a hook")


class Record(HookBase):
    def __init__(self):
        self.after_train_ran = False

    def after_train(self):
        self.after_train_ran = True


def test_an_exception_in_a_hook_restores_signal_handlers_and_shuts_workers_down(toy_dir, tmp_path):
    def sentinel(signum, frame):
        pass

    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
    before = {sig: signal.signal(sig, sentinel) for sig in signals}
    record = Record()
    try:
        trainer = Trainer(tiny_cfg(toy_dir, tmp_path, "TRAIN.EVAL_PERIOD", "0", "SOLVER.MAX_EPOCH", "2",
                                   "DATA_LOADER.NUM_WORKERS", "1"))
        trainer.register_hooks([Boom(), record])
        with pytest.raises(RuntimeError, match="boom in a hook"):
            trainer.train()
        assert all(signal.getsignal(sig) is sentinel for sig in signals)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert record.after_train_ran and not trainer.completed
    assert trainer.train_loader._iterator is None  # persistent workers shut down
    assert not (tmp_path / "model_final.pyth").exists()  # an unfinished run exports nothing
