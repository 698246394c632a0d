"""Hooks own their state: they read the trainer but cannot set its attributes, add results only once, and carry
what must survive a resume in their own state_dict, which the checkpoint stores by hook name (older checkpoints'
top-level keys mapped)."""
import ast
import glob
import json
import math
import os
import re

import pytest
from conftest import REPO_ROOT, tiny_cfg

from rs3d.checkpoint import load_checkpoint, save_atomic
from rs3d.engine import HookBase, Trainer, TrainerBase
from rs3d.engine.hooks import CheckpointHook, EvalHook, ProgressHook
from rs3d.engine.trainer import hook_states_of


class Loop(TrainerBase):
    """Two epochs of three steps, no model: enough to drive hooks."""

    def __init__(self):
        super().__init__()
        self.max_epoch, self.iters_per_epoch = 2, 3

    def epoch_batches(self):
        return iter(range(self.iters_per_epoch))

    def run_step(self, batch):
        self.step += 1


class Counter(HookBase):
    def __init__(self, name="Counter"):
        self._name, self.steps = name, 0

    @property
    def name(self):
        return self._name

    def after_step(self):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


def test_a_hook_cannot_set_a_trainer_attribute():
    class Writes(HookBase):
        def after_epoch(self):
            self.trainer.best = 1.0

    loop = Loop()
    loop.register_hooks([Writes()])
    with pytest.raises(AttributeError, match=r"a hook does not set trainer attributes \(tried trainer.best\)"):
        loop.train()
    assert not hasattr(loop, "best")


def test_a_hook_reads_the_trainer_and_adds_results_once():
    seen = []

    class Reads(HookBase):
        def after_epoch(self):
            seen.append((self.trainer.epoch, self.trainer.step, self.trainer.is_last_epoch))
            self.trainer.add_results({"val_top1": 10.0 * self.trainer.epoch})

    class AddsAgain(HookBase):
        def after_epoch(self):
            self.trainer.add_results({"val_top1": 0.0})

    loop = Loop()
    loop.register_hooks([Reads()])
    loop.train()
    assert seen == [(0, 3, False), (1, 6, True)]
    assert loop.history == [{"epoch": 1, "val_top1": 0.0}, {"epoch": 2, "val_top1": 10.0}]
    loop = Loop()
    loop.register_hooks([Reads(), AddsAgain()])
    with pytest.raises(ValueError, match="epoch 1 already has val_top1"):
        loop.train()


def test_hook_states_are_collected_and_restored_by_name():
    loop = Loop()
    counter = Counter()
    loop.register_hooks([counter, Counter("Other"), HookBase()])  # a stateless hook stores nothing
    loop.train()
    assert loop.hook_states() == {"Counter": {"steps": 6}, "Other": {"steps": 6}}
    again = Loop()
    restored = Counter()
    again.register_hooks([restored])
    again.load_hook_states({"Counter": {"steps": 4}, "Gone": {"x": 1}})  # a hook this run lacks is left alone
    assert restored.steps == 4
    twins = Loop()
    twins.register_hooks([Counter(), Counter()])
    with pytest.raises(ValueError, match="two hooks named Counter keep state"):
        twins.hook_states()


def test_old_checkpoints_top_level_best_goes_to_the_checkpoint_hook():
    assert hook_states_of({"best": 62.5}) == {"CheckpointHook": {"best": 62.5}}
    assert hook_states_of({"hooks": {"CheckpointHook": {"best": 70.0}}, "best": 1.0}) == \
        {"CheckpointHook": {"best": 70.0}}
    assert hook_states_of({}) == {}


@pytest.mark.slow
def test_the_best_score_lives_in_the_checkpoint_hook_and_survives_a_resume_from_an_old_checkpoint(toy_dir,
                                                                                                    tmp_path):
    opts = ["SOLVER.MAX_EPOCH", "1", "TRAIN.LOGGERS", "[]"]
    trainer = Trainer(tiny_cfg(toy_dir, tmp_path, *opts))
    trainer.train()
    trainer.monitor.close()
    [val_ema] = [json.loads(line)["top1"] for line in open(tmp_path / "metrics.jsonl")
                 if json.loads(line)["split"] == "val_ema"]
    hooks = {type(h): h for h in trainer.hooks}
    assert hooks[CheckpointHook].best == val_ema and hooks[EvalHook].results["val_ema_top1"] == val_ema
    assert hooks[ProgressHook].meters["step_time"].count == trainer.iters_per_epoch  # this epoch's batches
    assert not hasattr(trainer, "best") and not hasattr(trainer, "meters")  # state of hooks, not of the trainer
    path = trainer.checkpoints.latest()
    state = load_checkpoint(path)
    assert state["hooks"]["CheckpointHook"] == {"best": val_ema} and "best" not in state

    old = {k: v for k, v in state.items() if k != "hooks"}  # as written before hooks kept their own state
    old["best"] = 99.0
    save_atomic(old, path, checksum=True)
    resumed = Trainer(tiny_cfg(toy_dir, tmp_path, *opts))
    assert resumed.start_epoch == 1
    assert {type(h): h for h in resumed.hooks}[CheckpointHook].best == 99.0
    fresh = Trainer(tiny_cfg(toy_dir, tmp_path / "fresh", *opts))
    assert {type(h): h for h in fresh.hooks}[CheckpointHook].best == -math.inf


def trainer_reads(path):
    """The trainer attributes a hook module touches: ``self.trainer.X``, or ``t.X`` after ``t = self.trainer``."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Attribute):
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "t") or (
                    isinstance(owner, ast.Attribute) and owner.attr == "trainer"
                    and isinstance(owner.value, ast.Name) and owner.value.id == "self"):
                found.add(node.attr)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr" and len(node.args) >= 2 \
                and ast.unparse(node.args[0]) == "self.trainer":
            found.add(node.args[1].value)
    return found


def test_the_library_hooks_touch_only_what_the_trainer_docstring_lists():
    doc = Trainer.__doc__.split("What hooks may read", 1)[1]
    allowed = set(re.findall(r"``(\w+)``", doc)) | set(re.findall(r":meth:`(\w+)`", doc))
    modules = glob.glob(os.path.join(REPO_ROOT, "rs3d", "engine", "hooks", "*.py"))
    used = {name: os.path.basename(path) for path in modules for name in trainer_reads(path)}
    assert {"epoch_summary", "save_checkpoint", "monitor", "add_results"} <= set(used)  # the scan finds them
    assert {name: module for name, module in used.items() if name not in allowed} == {}
