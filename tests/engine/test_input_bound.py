"""The input-bound diagnosis: a slow loader is named as the bottleneck, a slow model is not."""
import logging
import time

import torch

from rs3d.engine.hooks.diagnosis import InputBoundHook, InputBoundReport, advice
from rs3d.engine.trainer import TrainerBase


class SleepyTrainer(TrainerBase):
    """A loop whose loader and step take fixed times."""

    def __init__(self, load_s: float, step_s: float, steps: int = 8):
        super().__init__()
        self.load_s, self.step_s, self.max_epoch, self.iters_per_epoch = load_s, step_s, 1, steps

    def epoch_batches(self):
        for i in range(self.iters_per_epoch):
            time.sleep(self.load_s)
            yield i

    def run_step(self, batch) -> None:
        time.sleep(self.step_s)


def run(load_s, step_s, caplog):
    trainer = SleepyTrainer(load_s, step_s)
    hook = InputBoundHook(clips_per_step=4, num_workers=2, prefetch=2, skip_steps=2)
    trainer.register_hooks([hook])
    with caplog.at_level(logging.INFO, logger="rs3d"):
        summary = trainer.train()
    return hook, summary, caplog.text


def test_slow_loader_is_reported_with_what_to_try(caplog):
    hook, summary, text = run(0.03, 0.002, caplog)
    assert hook.total.steps == 6 and hook.epoch.wait_fraction > 0.7
    assert "INPUT-BOUND" in text and "DATA_LOADER.NUM_WORKERS is 2" in text and "DATA.AUGMENT_ON_DEVICE" in text
    assert "input check over the whole run" in text
    assert hook.total.model_clips_per_s > 5 * hook.total.loader_clips_per_s


def test_slow_model_is_not_input_bound(caplog):
    hook, summary, text = run(0.0, 0.02, caplog)
    assert hook.epoch.wait_fraction < 0.1 and "not input-bound" in text and "INPUT-BOUND" not in text


def test_advice_arithmetic():
    report = InputBoundReport(steps=10, wait_s=3.0, compute_s=1.0, clips_per_step=8)
    assert report.wait_fraction == 0.75
    assert report.loader_clips_per_s == 20.0 and report.model_clips_per_s == 80.0
    text = advice(report, 0.1, 4, 2, augment_on_device=True)
    assert "4.0x faster input" in text and "AUGMENT_ON_DEVICE" not in text


def test_bottleneck_names_the_slower_side():
    from rs3d.studies.bottleneck import bottleneck

    assert bottleneck(50.0, 100.0).startswith("input") and "2.0x more" in bottleneck(50.0, 100.0)
    assert bottleneck(300.0, 100.0).startswith("model") and "3.0x headroom" in bottleneck(300.0, 100.0)


def test_rank_seed_hook_gives_each_rank_its_own_reproducible_masks():
    from rs3d.engine.hooks import RankSeedHook

    def masks(rank, start_epoch=0):
        trainer = SleepyTrainer(0.0, 0.0, steps=3)
        trainer.max_epoch, trainer.start_epoch = 2, start_epoch
        drawn = []
        trainer.run_step = lambda batch: drawn.append(torch.rand(4))
        torch.manual_seed(0)
        trainer.register_hooks([RankSeedHook(seed=7, rank=rank)])
        trainer.train()
        return drawn

    rank0, rank1, rank2 = masks(0), masks(1), masks(2)
    assert not torch.equal(torch.stack(rank1), torch.stack(rank2))
    assert not torch.equal(torch.stack(rank0), torch.stack(rank1))
    resumed = masks(1, start_epoch=1)  # a run resumed at epoch 1 draws what the uninterrupted one drew there
    assert all(torch.equal(a, b) for a, b in zip(resumed, rank1[3:]))


def test_advice_quotes_this_processes_share_of_the_cores_under_torchrun(monkeypatch):
    """Under torchrun every rank's loader workers share the machine: 4 ranks on 16 cores leave each 4, not 16."""
    import rs3d.engine.hooks.diagnosis as diagnosis

    report = InputBoundReport(steps=10, wait_s=3.0, compute_s=1.0, clips_per_step=8)
    monkeypatch.setattr(diagnosis, "available_cores", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert "this process may use 16 cores" in advice(report, 0.1, 4, 2, augment_on_device=True)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    text = advice(report, 0.1, 4, 2, augment_on_device=True)
    assert "share is 4 of the 16 usable cores, shared by 4 training processes" in text and "use 16 cores" not in text
