"""A run continued under another config or on another machine: a recipe change accepted with --allow-changes is what
trains (not the checkpoint's values), fp16 can follow bf16/fp32, a restart that reuses a dead run's PID gets its
folder back, a run resumed on fewer GPUs restores the RNG states it can, and a best epoch between checkpoint epochs
still leaves checkpoint_best.pyth."""
import json
import os
import socket
import time
import types

import pytest
import torch
from conftest import tiny_cfg

from rs3d.checkpoint import load_checkpoint
from rs3d.checkpoint import rng as rng_module
from rs3d.checkpoint.manager import CheckpointManager
from rs3d.engine import HookBase, Trainer, TrainerBase
from rs3d.engine.hooks import CheckpointHook
from rs3d.engine.run_lock import LOCK_NAME, RunLock, RunLockedError

RECIPE = ["SOLVER.BASE_LR", "4.0", "SOLVER.WEIGHT_DECAY", "0.0", "SOLVER.MOMENTUM", "0.5", "SOLVER.EMA_DECAY", "0.5"]


def first_epoch(toy_dir, out) -> str:
    Trainer(tiny_cfg(toy_dir, out, "SOLVER.MAX_EPOCH", "1", "TRAIN.EVAL_PERIOD", "0")).train()
    return str(out / "checkpoints" / "checkpoint_epoch_00001.pyth")


def test_a_resumed_run_trains_with_the_configs_recipe_and_a_plain_resume_is_untouched(toy_dir, tmp_path):
    path = first_epoch(toy_dir, tmp_path)
    saved = load_checkpoint(path)
    same = Trainer(tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.AUTO_RESUME", "False",
                            "TRAIN.EVAL_PERIOD", "0"))
    same.resume(path)
    assert same.optimizer.state_dict()["param_groups"] == saved["optimizer"]["param_groups"]
    assert same.scheduler.base_lrs == saved["scheduler"]["base_lrs"] and same.ema.decay == 0.9

    changed = Trainer(tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.AUTO_RESUME", "False",
                               "TRAIN.EVAL_PERIOD", "0", *RECIPE))
    changed.resume(path)
    old_base, new_base = saved["scheduler"]["base_lrs"][0], changed.lr
    assert new_base == pytest.approx(10 * old_base)  # BASE_LR 0.4 -> 4.0, same batch scaling
    assert changed.scheduler.base_lrs == [new_base] * len(changed.optimizer.param_groups)
    for group, old in zip(changed.optimizer.param_groups, saved["optimizer"]["param_groups"]):
        assert group["lr"] == pytest.approx(old["lr"] * 10)  # the schedule's position kept, the base changed
        assert group["initial_lr"] == new_base
        assert (group["weight_decay"], group["momentum"]) == (0.0, 0.5)
    assert changed.scheduler.get_last_lr() == [g["lr"] for g in changed.optimizer.param_groups]
    assert changed.ema.decay == 0.5
    changed.train()  # and the next step follows the new base: LR = new base x the schedule's factor there
    factor = changed.scheduler.lr_lambdas[0](changed.scheduler.last_epoch)
    assert changed.optimizer.param_groups[0]["lr"] == pytest.approx(new_base * factor)


def test_fp16_can_continue_a_run_trained_without_it(toy_dir, tmp_path, caplog):
    path = first_epoch(toy_dir, tmp_path)
    assert load_checkpoint(path)["scaler"] == {}  # a disabled scaler saves nothing
    trainer = Trainer(tiny_cfg(toy_dir, tmp_path, "SOLVER.MAX_EPOCH", "2", "TRAIN.AUTO_RESUME", "False",
                               "TRAIN.EVAL_PERIOD", "0", "TRAIN.MIXED_PRECISION", "fp16"))
    with caplog.at_level("INFO"):
        trainer.resume(path)
    assert trainer.scaler.is_enabled() and trainer.start_epoch == 1
    assert "no fp16 loss scale" in caplog.text


class Loop(TrainerBase):
    """Four epochs of two steps whose validation top-1 is given, checkpointing through a real manager."""

    def __init__(self, folder, scores):
        super().__init__()
        self.max_epoch, self.iters_per_epoch, self.scores = len(scores), 2, scores
        self.checkpoints = CheckpointManager(folder, 10)
        self.dist = types.SimpleNamespace(is_main=True, distributed=False, rank=0)
        self.last_saved = None

    def epoch_batches(self):
        return iter(range(self.iters_per_epoch))

    def run_step(self, batch):
        self.step += 1
        self.stepped = True

    def save_checkpoint(self, iteration=0, is_best=False, best_only=False):
        done = self.epoch if iteration else self.epoch + 1
        state = {"epoch": done, "val": self.epoch_summary.get("val_top1")}
        if best_only:
            return self.checkpoints.save_best(state)
        return self.checkpoints.save(done, state, is_best, iteration)

    def export_state(self):
        return {}


class Scores(HookBase):
    def after_epoch(self):
        self.trainer.add_results({"val_top1": self.trainer.scores[self.trainer.epoch]})


@pytest.mark.parametrize("scores,best_epoch", [([70.0, 60.0, 65.0, 50.0], 1), ([50.0, 60.0, 65.0, 80.0], 4),
                                               ([50.0, 60.0, 70.0, 65.0], 3)])
def test_the_best_epoch_is_kept_whether_or_not_it_writes_a_checkpoint(tmp_path, scores, best_epoch):
    """CHECKPOINT_PERIOD 2, EVAL_PERIOD 1: epochs 1 and 3 write no epoch checkpoint, yet a best there is kept."""
    loop = Loop(str(tmp_path), scores)
    loop.register_hooks([Scores(), CheckpointHook(loop.checkpoints, 2, str(tmp_path / "final.pyth"))])
    loop.train()
    best = load_checkpoint(str(tmp_path / "checkpoint_best.pyth"))
    assert (best["epoch"], best["val"]) == (best_epoch, max(scores))
    assert os.path.exists(str(tmp_path / "checkpoint_best.pyth.sha256"))
    assert [os.path.basename(p) for p in loop.checkpoints.all()] == ["checkpoint_epoch_00002.pyth",
                                                                     "checkpoint_epoch_00004.pyth"]


def write_lock(folder, pid):
    holder = {"host": socket.gethostname(), "pid": pid, "started": time.time() - 30, "refreshed": time.time() - 30}
    (folder / LOCK_NAME).write_text(json.dumps(holder))


def test_a_restart_that_reuses_the_dead_runs_pid_takes_the_lock_over(tmp_path, caplog):
    """A container restarted in a fresh PID namespace can get the PID its killed predecessor wrote in the lock."""
    write_lock(tmp_path, os.getpid())
    lock = RunLock(str(tmp_path))
    lock.acquire()
    try:
        assert "reusing the PID" in caplog.text
        assert json.loads((tmp_path / LOCK_NAME).read_text())["started"] == lock.me["started"]
        with pytest.raises(RunLockedError, match="in use by another run"):  # this process really holds it now
            RunLock(str(tmp_path)).acquire()
    finally:
        lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_rng_states_of_more_gpus_than_this_machine_has_restore_those_it_has(monkeypatch):
    restored = []
    state = rng_module.rng_state()
    state["cuda"] = [torch.full((4,), i, dtype=torch.uint8) for i in range(8)]  # written on an 8-GPU node
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: restored.append((device, int(s[0]))))
    rng_module.set_rng_state(state)
    assert restored == [(0, 0), (1, 1)]
