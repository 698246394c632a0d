"""What clusters do to a run, in process: damaged checkpoints, full disks, preemption signals, mid-epoch resume,
crashing decoder workers, RNG states loaded off the CPU, terminals that are not where the output goes."""
import logging
import os
import pty
import signal
import stat

import pytest
import torch
from conftest import tiny_cfg

from rs3d.checkpoint.io import CheckpointSaveError, load_checkpoint
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.engine import HookBase, Trainer
from rs3d.engine.hooks.preemption import PreemptedError
from rs3d.engine.monitor import Monitor


def run(toy_dir, out, *opts, hooks=()):
    trainer = Trainer(tiny_cfg(toy_dir, out, "TRAIN.EVAL_PERIOD", "0", *opts))
    trainer.register_hooks(hooks)
    trainer.train()
    return trainer


def assert_same_weights(a, b):
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    for key, value in a.ema.module.state_dict().items():
        assert torch.equal(value, b.ema.module.state_dict()[key]), key
    assert a.step == b.step and a.history == b.history


def ckpt_dir(out):
    return out / "checkpoints"


# ---------------------------------------------------------------- terminals and pipes
@pytest.mark.parametrize("stderr_is_tty", [True, False])
def test_progress_line_is_sized_from_the_terminal_it_writes_to(tmp_path, stderr_is_tty):
    """stdout piped (not a terminal) while stderr is one used to raise ENOTTY from os.get_terminal_size()."""
    master, slave = pty.openpty()
    with open(slave, "w", closefd=True) as tty, open(tmp_path / "pipe.txt", "w") as pipe:
        stream = tty if stderr_is_tty else pipe
        monitor = Monitor(str(tmp_path), True, tensorboard=False, stream=stream)
        assert monitor.tty == stderr_is_tty
        monitor.line("epoch 1/1 iter 1/3 loss 1.0", final=False)  # raised ENOTTY before (stdout is not a tty)
        monitor.line("epoch 1/1 iter 3/3 loss 1.0", final=True)
        monitor.close()
    if stderr_is_tty:
        assert b"iter 1/3" in os.read(master, 1000)
    os.close(master)


# ---------------------------------------------------------------- damaged checkpoints, permissions
@pytest.mark.slow
def test_resume_falls_back_to_the_newest_intact_checkpoint(toy_dir, tmp_path, caplog):
    run(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2")
    newest = ckpt_dir(tmp_path) / "checkpoint_epoch_00002.pyth"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="rs3d"):
        trainer = Trainer(tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "3", "TRAIN.EVAL_PERIOD", "0"))
    assert trainer.start_epoch == 1
    assert "checkpoint_epoch_00002.pyth" in caplog.text and "checksum mismatch" in caplog.text
    assert newest.read_bytes() == data[: len(data) // 2]  # never deleted
    trainer.train()  # writes epoch 2 again; the damaged one is kept aside
    assert (ckpt_dir(tmp_path) / "checkpoint_epoch_00002.pyth.damaged").read_bytes() == data[: len(data) // 2]
    assert load_checkpoint(str(newest))["epoch"] == 2


def test_damaged_checkpoint_without_checksum_is_skipped_too(tmp_path):
    manager = CheckpointManager(str(tmp_path))
    manager.save(1, {"epoch": 1})
    manager.save(2, {"epoch": 2})
    os.remove(manager.path_for(2) + ".sha256")  # e.g. written by an older version
    open(manager.path_for(2), "r+b").truncate(100)
    path, state = manager.load_latest()
    assert path == manager.path_for(1) and state["epoch"] == 1


def test_checkpoints_get_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        manager = CheckpointManager(str(tmp_path / "c"))
        path = manager.save(1, {"epoch": 1}, is_best=True)
    finally:
        os.umask(old)
    for name in (path, path + ".sha256", manager.best_path):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o640, name


def test_resume_loads_rng_states_on_the_cpu(toy_dir, tmp_path, monkeypatch):
    """A GPU run loaded the checkpoint with map_location=device and set_rng_state got a CUDA tensor."""
    run(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "1")
    trainer = Trainer(tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.AUTO_RESUME", "False"))
    trainer.device = torch.device("meta")  # stands for a GPU: tensors loaded there cannot seed the CPU RNG
    trainer.resume(str(ckpt_dir(tmp_path) / "checkpoint_epoch_00001.pyth"))
    assert trainer.start_epoch == 1


# ---------------------------------------------------------------- full disk
def test_a_failing_save_keeps_earlier_checkpoints_and_the_next_run_resumes(toy_dir, tmp_path, monkeypatch):
    run(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "1")
    before = {p.name: p.read_bytes() for p in ckpt_dir(tmp_path).iterdir()}
    real_write = os.write

    class FullDisk:  # every file opened for a checkpoint write fails half-way
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(bytes(data[: len(data) // 2]))
            raise OSError(28, os.strerror(28))

        def __getattr__(self, name):
            return getattr(self.handle, name)

    import rs3d.checkpoint.io as io_module
    real_open = io_module.atomic_open

    def failing_open(path, mode="w", **kwargs):
        import contextlib

        @contextlib.contextmanager
        def wrapper():
            with real_open(path, mode, **kwargs) as f:
                yield FullDisk(f)
        return wrapper()

    monkeypatch.setattr(io_module, "atomic_open", failing_open)
    trainer = Trainer(tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.EVAL_PERIOD", "0"))
    with pytest.raises(CheckpointSaveError, match=f"into {ckpt_dir(tmp_path)}: No space left on device"):
        trainer.train()
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in ckpt_dir(tmp_path).iterdir()} == before  # no temporary file either
    assert real_write is os.write
    resumed = Trainer(tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.EVAL_PERIOD", "0"))
    assert resumed.start_epoch == 1


# ---------------------------------------------------------------- mid-epoch checkpoints and preemption
class SignalAt(HookBase):
    """Sends the process a signal after loader batch ``iteration`` of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch, iteration, sig=signal.SIGTERM):
        self.epoch, self.iteration, self.sig = epoch, iteration, sig

    def before_step(self):
        if (self.trainer.epoch, self.trainer.iter) == (self.epoch, self.iteration):
            os.kill(os.getpid(), self.sig)


@pytest.mark.slow
def test_stop_signal_writes_a_mid_epoch_checkpoint_and_resume_is_exact(toy_dir, tmp_path, sig=signal.SIGUSR1):
    """SIGUSR1 here; SIGTERM through the command line in test_preemption.py."""
    opts = ["SOLVER.MAX_EPOCH", "2"]
    straight = run(toy_dir, tmp_path / "straight", *opts)
    handler = signal.getsignal(sig)
    with pytest.raises(PreemptedError, match=f"{signal.Signals(sig).name}: stopped after step 5") as info:
        run(toy_dir, tmp_path / "stopped", *opts, hooks=[SignalAt(1, 1, sig)])
    assert info.value.exit_code == 75 and signal.getsignal(sig) is handler
    saved = ckpt_dir(tmp_path / "stopped") / "checkpoint_epoch_00001_iter_0000002.pyth"
    assert saved.exists() and load_checkpoint(str(saved))["iter"] == 2
    resumed = run(toy_dir, tmp_path / "stopped", *opts)
    assert resumed.start_epoch == 1
    assert_same_weights(straight, resumed)


@pytest.mark.slow
def test_iteration_checkpoints_sort_with_epoch_ones_and_resume_exactly(toy_dir, tmp_path):
    opts = ["SOLVER.MAX_EPOCH", "2", "TRAIN.KEEP_CHECKPOINTS", "10"]
    straight = run(toy_dir, tmp_path / "straight", *opts)
    run(toy_dir, tmp_path / "mid", *opts, "TRAIN.CHECKPOINT_PERIOD_ITERS", "1")
    manager = CheckpointManager(str(ckpt_dir(tmp_path / "mid")))
    assert [os.path.basename(p) for p in manager.all()] == [
        "checkpoint_epoch_00000_iter_0000001.pyth", "checkpoint_epoch_00000_iter_0000002.pyth",
        "checkpoint_epoch_00001.pyth", "checkpoint_epoch_00001_iter_0000001.pyth",
        "checkpoint_epoch_00001_iter_0000002.pyth", "checkpoint_epoch_00002.pyth"]
    for name in manager.all()[-2:]:
        os.remove(name)  # as if killed after iteration 1 of the second epoch
    resumed = run(toy_dir, tmp_path / "mid", *opts)
    assert (resumed.start_epoch, resumed.history[-1]["epoch"]) == (1, 2)
    assert_same_weights(straight, resumed)
    assert resumed.history[-1]["train_loss"] == straight.history[-1]["train_loss"]  # running sums restored


def test_sampler_skips_the_samples_already_used():
    from torch.utils.data import RandomSampler

    from rs3d.data.epoch_sampler import EpochSampler

    sampler = EpochSampler(RandomSampler(range(10), generator=torch.Generator()), seed=3)
    sampler.set_epoch(4)
    full = list(sampler)
    sampler.set_epoch(4, skip=6)
    assert list(sampler) == full[6:]
    assert len(list(sampler)) == len(full) == len(sampler)  # the skip is for one pass only (precise BN)


# ---------------------------------------------------------------- decoder crashes in DataLoader workers
@pytest.mark.slow
def test_a_worker_killed_by_a_decoder_crash_is_survived(toy_dir, tmp_path, monkeypatch, caplog):
    from torch.utils.data import get_worker_info

    from rs3d.data.dataset import TrainClipDataset

    real = TrainClipDataset._load
    victim = "move_left_00000.mp4"

    def crashing_load(self, path):
        if path.endswith(victim) and get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGSEGV)  # what a decord segfault looks like from outside
        return real(self, path)

    monkeypatch.setattr(TrainClipDataset, "_load", crashing_load)
    opts = ["SOLVER.MAX_EPOCH", "1", "DATA_LOADER.NUM_WORKERS", "1"]
    with caplog.at_level(logging.WARNING):
        trainer = run(toy_dir, tmp_path, *opts)
    assert trainer.step == 3 and trainer.loader_guard.crashes == 1
    assert "DataLoader worker" in caplog.text and victim in caplog.text
    recorded = (tmp_path / "crashed_videos.txt").read_text().split()
    assert len(recorded) == 1 and recorded[0].endswith(victim)
    assert trainer.skips.total_skips >= 1  # replaced like an unreadable video
    again = Trainer(tiny_cfg(toy_dir, tmp_path / "again", *opts))
    assert not again.train_loader.dataset.excluded  # a fresh run folder starts with no exclusions
    later = Trainer(tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", "DATA_LOADER.NUM_WORKERS", "1"))
    assert any(p.endswith(victim) for p in later.train_loader.dataset.excluded)  # read back on resume


# ---------------------------------------------------------------- streams that declare more frames than they hold
def test_over_declared_stream_is_kept_and_sampled_within_its_decodable_frames(video_dir, tmp_path, monkeypatch):
    """The faststart file cut to 2/3: its index declares 90 frames, about 60 decode."""
    from rs3d.data import dataset as dataset_module
    from rs3d.data.annotations import VideoRecord
    from rs3d.data.clip_sampling import ClipSpec
    from rs3d.data.dataset import TrainClipDataset
    from rs3d.data.metadata import load_metadata, save_metadata
    from rs3d.data.prep.checks import check_video
    from rs3d.data.transforms import TrainClipTransform

    path = video_dir["truncated_faststart"]
    check = check_video(path)
    assert check.readable and check.declared_frames == 90 and 0 < check.num_frames < 90, check
    assert any(f"declares 90 frames but only {check.num_frames} decode" in w for w in check.warnings)
    meta = tmp_path / "train.meta.json"
    assert save_metadata(str(meta), [check]) == 1
    assert json_entry(meta)["declared_frames"] == 90
    seen = []
    real = dataset_module.random_start
    monkeypatch.setattr(dataset_module, "random_start",
                        lambda spec, num_frames, *a, **k: seen.append(num_frames) or real(spec, num_frames, *a, **k))
    ds = TrainClipDataset([VideoRecord(path, 0)], ClipSpec(8, 4), TrainClipTransform(32), backends=("pyav",))
    ds.preload_info(load_metadata(str(meta), [path]))
    for epoch in range(6):
        assert ds[(epoch, 0)]["failures"] == []
    assert set(seen) == {check.num_frames}  # never a draw past the real end, so never a re-draw


def json_entry(meta):
    import json

    return next(iter(json.loads(meta.read_text()).values()))
