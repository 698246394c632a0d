"""The README's promises that a plausible bug could break silently, each checked against an independent expectation
(a literal from the README / TF reference recipe, PIL's or torch's own implementation, the file system's state).
tools/mutation_check.py plants those bugs and confirms that these tests catch them."""
import json
import logging
import math
import os
import shutil
import signal
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from rs3d.commands import base as cli
from rs3d.config import get_cfg, load_config
from rs3d.config.catalog import ConfigError
from rs3d.data import build_loader
from rs3d.data.dataset import SkipTracker
from rs3d.data.transforms import Box, cut_clip, resize_crop
from rs3d.engine import Trainer
from rs3d.engine.hooks.preemption import PreemptedError, PreemptionHook
from rs3d.engine.loader_guard import LoaderCrashError, LoaderGuard
from rs3d.engine.trainer import NonFiniteLossError
from rs3d.models import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- per-sample augmentation draws
def _same_video_cfg(tmp_path, video, count, workers):
    """A training split of ``count`` copies of one video: any difference between samples is the augmentation."""
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        shutil.copy(video, data / "clip.mp4")
        (data / "train.csv").write_text("".join(f"clip.mp4 {i % 2}\n" for i in range(count)))
        (data / "classnames.json").write_text(json.dumps(["a", "b"]))
    cfg = get_cfg()
    cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES = str(data), 2
    cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TRAIN_CROP_SIZE = 4, 2, 32
    cfg.DATA.RANDAUGMENT_LAYERS, cfg.DATA.RANDAUGMENT_MAGNITUDE = 1, 3
    cfg.DATA_LOADER.NUM_WORKERS, cfg.TRAIN.BATCH_SIZE = workers, 2
    return cfg


def _epoch(cfg, epoch):
    loader = build_loader(cfg, "train")
    loader.sampler.set_epoch(epoch)
    batches = list(loader)
    return torch.cat([b["video"] for b in batches]), torch.cat([b["index"] for b in batches])


def test_each_sample_of_an_epoch_draws_its_own_augmentation_whatever_the_worker_count(tmp_path, video_dir):
    """Every clip of an epoch gets its own crop / flip / RandAugment draw, the same for 0, 1 or 2 workers."""
    videos, indices = _epoch(_same_video_cfg(tmp_path, video_dir["good"], 6, 0), epoch=0)
    assert sorted(indices.tolist()) == list(range(6)) and videos.shape == (6, 3, 4, 32, 32)
    for i in range(6):
        for j in range(i):
            assert not torch.equal(videos[i], videos[j]), (i, j)  # six copies of one video, six different clips
    for workers in (1, 2):
        other, other_indices = _epoch(_same_video_cfg(tmp_path, video_dir["good"], 6, workers), epoch=0)
        assert torch.equal(other_indices, indices) and torch.equal(other, videos), workers
    next_epoch, _ = _epoch(_same_video_cfg(tmp_path, video_dir["good"], 6, 0), epoch=1)
    assert not any(torch.equal(a, b) for a in next_epoch for b in videos)  # new draws every epoch


# ---------------------------------------------------------------- the reference recipe on the built objects
@pytest.fixture(scope="module")
def rs3d_50():
    cfg = load_config(os.path.join(ROOT, "configs/kinetics400/rs3d_50.yaml"))
    with torch.device("meta"):  # the structure and the layers' settings, without initialising 48M weights
        return cfg, build_model(cfg)


def test_rs3d_50_bn_layers_have_the_reference_momentum_and_eps(rs3d_50):
    """TF: norm_momentum 0.0 (Keras' convention) = PyTorch momentum 1.0; norm_epsilon 1e-5 (README, reference)."""
    _, model = rs3d_50
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) > 50
    assert {m.momentum for m in norms} == {1.0} and {m.eps for m in norms} == {1e-5}


def test_rs3d_50_optimizer_is_the_reference_sgd(rs3d_50):
    """SGD with Nesterov momentum 0.9; weight decay 4e-5 on conv and linear weights only: BN parameters, biases
    and the self-gating conv are exempt (README). The groups are checked parameter by parameter."""
    cfg, model = rs3d_50
    optimizer = Trainer.build_optimizer(SimpleNamespace(model=model, lr=0.1), cfg)  # the trainer's own builder
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["nesterov"] is True and optimizer.defaults["momentum"] == 0.9
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert {g["lr"] for g in optimizer.param_groups} == {0.1}
    expected, gating = {}, set()
    for name, module in model.named_modules():
        if type(module).__name__ == "SelfGating3d":
            gating.update(id(p) for p in module.parameters())
    for name, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            if isinstance(module, nn.modules.batchnorm._BatchNorm) or pname == "bias" or id(param) in gating:
                expected[id(param)] = 0.0
            elif isinstance(module, (nn.Conv3d, nn.Linear)):
                expected[id(param)] = 4e-5
    assert gating and len(expected) == len(list(model.parameters())) == len(decay_of)
    assert decay_of == expected


def test_the_scaled_learning_rate_follows_the_linear_rule():
    """README: SOLVER.BASE_LR 0.8 at 1024 clips, scaled linearly to the global batch."""
    from rs3d.engine.optim import scaled_lr

    assert scaled_lr(0.8, 1024, 256) == pytest.approx(0.2) and scaled_lr(0.8, 1024, 2048) == pytest.approx(1.6)


# ---------------------------------------------------------------- the crop resize
def _pil_bilinear(clip: torch.Tensor, size: int) -> torch.Tensor:
    """PIL's antialiased bilinear resize (its filter support grows with the shrink), frame by frame, per channel."""
    return torch.stack([torch.stack([torch.from_numpy(np.array(Image.fromarray(plane.numpy()).resize(
        (size, size), Image.BILINEAR))) for plane in frame]) for frame in clip])


def _texture(shape, seed=0):
    """2x2-pixel random blocks: detail finer than the output grid, which an unfiltered shrink aliases."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape[-2] // 2, shape[-1] // 2
    return torch.randint(0, 256, (*shape[:-2], h, w), generator=g, dtype=torch.uint8).repeat_interleave(
        2, -1).repeat_interleave(2, -2)


def test_crop_resize_is_antialiased_like_pil():
    """A 180x200 crop shrunk to 112: within one grey level of PIL (an unantialiased resize is ~16 levels off)."""
    crop = _texture((2, 3, 180, 200))
    out, ref = resize_crop(crop, 112), _pil_bilinear(crop, 112)
    diff = (out.float() - ref.float()).abs()
    assert out.dtype == torch.uint8 and diff.max() <= 1 and diff.mean() < 0.05
    full = _texture((2, 3, 256, 340), seed=1)
    clip = cut_clip(full, Box(top=30, left=70, height=150, width=160), (1.0, 1.0), 112)  # the worker path
    diff = (clip.float() - _pil_bilinear(full[..., 30:180, 70:230], 112).float()).abs()
    assert diff.max() <= 1 and diff.mean() < 0.05


# ---------------------------------------------------------------- exit statuses
def _status(error: BaseException) -> int:
    def main():
        raise error

    with pytest.raises(SystemExit) as exit_info:
        cli.run(main)
    return exit_info.value.code


@pytest.mark.parametrize("error,status", [
    (ConfigError("SOLVER.BASE_LR: bad"), 2),  # bad input: one error: line, status 2
    (NonFiniteLossError("loss is nan"), 3),  # a NaN loss
    (LoaderCrashError("11 worker deaths"), 3),  # DataLoader workers kept dying
    (PreemptedError("SIGTERM: stopped"), 75),  # EX_TEMPFAIL: schedulers requeue on it
    (KeyboardInterrupt(), 130),  # 128 + SIGINT
])
def test_exit_statuses_are_the_documented_numbers(error, status, capsys):
    assert _status(error) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    if isinstance(error, PreemptedError):
        assert err.startswith("stopped: ")
    elif isinstance(error, (ConfigError, NonFiniteLossError, LoaderCrashError)):
        assert err.startswith("error: ")


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 75), (signal.SIGUSR1, 75), (signal.SIGINT, 130)])
def test_a_stop_signal_maps_to_its_exit_status(sig, status):
    """SIGTERM / SIGUSR1 from a scheduler: 75 (requeue); Ctrl-C: 130, as a shell reports it."""
    hook = PreemptionHook()
    previous = signal.getsignal(sig)
    hook.before_train()
    try:
        os.kill(os.getpid(), sig)
    finally:
        hook.after_train()
    assert signal.getsignal(sig) is previous and hook.exit_code == status


# ---------------------------------------------------------------- skip reports
def test_each_bad_file_is_logged_once_with_its_reason_and_counted_per_epoch(caplog):
    tracker = SkipTracker()
    with caplog.at_level(logging.WARNING, logger="rs3d"):
        tracker.update([("a.mp4", "moov atom not found")])
        tracker.update([])
        tracker.update([("a.mp4", "moov atom not found"), ("b.mp4", "invalid data")])
        assert tracker.end_epoch() == 3
        tracker.update([("a.mp4", "moov atom not found")])
    assert tracker.end_epoch() == 1 and tracker.end_epoch() == 0
    assert tracker.total_skips == 4
    assert tracker.reported == {"a.mp4": "moov atom not found", "b.mp4": "invalid data"}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "a.mp4" in lines[0] and "moov atom not found" in lines[0]
    assert "b.mp4" in lines[1] and "invalid data" in lines[1]


@pytest.mark.slow
def test_training_reports_each_bad_file_once_and_counts_skips_per_epoch(tmp_path, video_dir, caplog):
    """README: each bad file is logged once with its reason and skips are counted per epoch (the epoch summary)."""
    from conftest import tiny_cfg

    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        shutil.copy(video_dir["good"], data / f"good{i}.mp4")
    shutil.copy(video_dir["text"], data / "text.mp4")
    (data / "train.csv").write_text("".join(f"good{i}.mp4 {i}\n" for i in range(5)) + "text.mp4 5\n")
    (data / "val.csv").write_text("good0.mp4 0\ngood1.mp4 1\n")
    (data / "classnames.json").write_text(json.dumps([f"c{i}" for i in range(8)]))
    cfg = tiny_cfg(str(data), tmp_path / "run", "SOLVER.MAX_EPOCH", "2", "TRAIN.BATCH_SIZE", "2", "TRAIN.EVAL_PERIOD",
                   "0", "TRAIN.AUTO_RESUME", "False")
    with caplog.at_level(logging.WARNING, logger="rs3d"):
        trainer = Trainer(cfg)
        trainer.train()
    assert [epoch["skipped_videos"] for epoch in trainer.history] == [1, 1]  # 6 samples an epoch, one unreadable
    named = [r.getMessage() for r in caplog.records if "text.mp4" in r.getMessage() and "unreadable video" in
             r.getMessage()]
    assert len(named) == 1 and "Invalid data found" in named[0], named  # FFmpeg's reason, once in the run
    assert trainer.skips.total_skips == 2


# ---------------------------------------------------------------- worker deaths
class _DyingLoader:
    """A stand-in for the training DataLoader whose first ``deaths`` iterators each yield one batch, then report a
    worker killed by SIGSEGV the way torch does; later iterators run to the end. Batches are sample indices."""

    batch_size = 1

    def __init__(self, length, deaths):
        self.length, self.deaths, self.skip = length, deaths, 0
        self.sampler = SimpleNamespace(set_epoch=self._set_epoch)
        self.dataset = SimpleNamespace()

    def _set_epoch(self, epoch, skip=0):
        self.skip = skip

    def __iter__(self):
        dies = self.deaths > 0
        self.deaths -= dies
        return _DyingIterator(self.skip, self.length, dies)


class _DyingIterator:
    def __init__(self, start, stop, dies):
        self.next, self.stop, self.left = start, stop, 1 if dies else math.inf  # batches before the death
        self._workers = [SimpleNamespace(pid=4242, exitcode=-int(signal.SIGSEGV))]

    def __next__(self):
        if self.left == 0:
            raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Segmentation fault. ")
        if self.next >= self.stop:
            raise StopIteration
        self.left -= 1
        self.next += 1
        return self.next - 1

    def _shutdown_workers(self):
        pass


def _guard(loader, tmp_path):
    guard = LoaderGuard(loader, str(tmp_path / "crashed_videos.txt"))  # the trainer's default limit
    guard.grace_s = 0.0  # no stop signal is coming: do not wait for one
    return guard


def test_ten_worker_deaths_are_survived_without_losing_a_batch(tmp_path):
    guard = _guard(_DyingLoader(30, deaths=10), tmp_path)
    assert list(guard.batches(0, 0, 30)) == list(range(30))  # restarted at the first batch not yet trained on
    assert guard.crashes == 10


def test_the_eleventh_worker_death_stops_the_run_with_status_3(tmp_path, capsys):
    guard = _guard(_DyingLoader(30, deaths=11), tmp_path)
    seen = []
    with pytest.raises(LoaderCrashError) as info:
        for batch in guard.batches(0, 0, 30):
            seen.append(batch)
    assert seen == list(range(11)) and "11 worker deaths" in str(info.value)
    assert _status(info.value) == 3 and capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")


# ---------------------------------------------------------------- optimizer step: fp16 grad scaler, clipping
def _stepper(grad_clip, scaler):
    """The trainer's optimizer step on one 4-parameter linear layer with plain SGD (lr 0.1)."""
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return SimpleNamespace(model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, grad_clip=grad_clip,
                           step=0)


def _one_step(stepper, grad):
    """Backward a loss whose gradient is ``grad`` through the scaler, then run Trainer.optimizer_step."""
    loss = (stepper.model.weight * grad).sum()
    stepper.scaler.scale(loss).backward()
    Trainer.optimizer_step(stepper)
    return stepper.model.weight.detach()


def test_fp16_grad_scaler_steps_with_the_unscaled_gradient():
    """Under TRAIN.MIXED_PRECISION fp16 the loss is scaled (2**10 here) and the step must use the true gradient."""
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, enabled=True)
    stepper = _stepper(0.0, scaler)
    grad = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    weight = _one_step(stepper, grad)
    torch.testing.assert_close(weight, torch.tensor([[1.0, 2.0], [3.0, 4.0]]) - 0.1 * grad)
    assert stepper.step == 1 and stepper.optimizer.param_groups[0]["params"][0].grad is None
    # An overflowing step is skipped and the scale halves (GradScaler's documented backoff 0.5).
    _one_step(stepper, torch.tensor([[math.inf, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(stepper.model.weight.detach(), weight)
    assert scaler.get_scale() == 2.0 ** 9


@pytest.mark.parametrize("scale", [None, 2.0 ** 10])
def test_grad_clip_norm_clips_the_true_gradient(scale):
    """SOLVER.GRAD_CLIP_NORM 1.0: a gradient of norm 5 is rescaled to norm 1 before the step, also when the loss
    was scaled by a grad scaler (clipping must see the unscaled gradient)."""
    scaler = torch.amp.GradScaler("cpu", init_scale=scale or 1.0, enabled=scale is not None)
    stepper = _stepper(1.0, scaler)
    grad = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # norm 5
    weight = _one_step(stepper, grad)
    torch.testing.assert_close(weight, torch.tensor([[1.0, 2.0], [3.0, 4.0]]) - 0.1 * grad / 5)
    small = _stepper(10.0, torch.amp.GradScaler("cpu", enabled=False))  # a norm under the limit is left alone
    torch.testing.assert_close(_one_step(small, grad), torch.tensor([[1.0, 2.0], [3.0, 4.0]]) - 0.1 * grad)


def test_the_trainer_builds_an_enabled_grad_scaler_for_fp16_only(tmp_path):
    from conftest import tiny_cfg

    (tmp_path / "classnames.json").write_text(json.dumps([f"c{i}" for i in range(8)]))  # all TRAIN.ENABLE False needs
    for precision, enabled in (("fp16", True), ("off", False), ("auto", False)):
        cfg = tiny_cfg(str(tmp_path), tmp_path / precision, "TRAIN.ENABLE", "False", "TRAIN.MIXED_PRECISION", precision)
        trainer = Trainer(cfg)
        assert trainer.scaler.is_enabled() == enabled, precision
        assert trainer.amp_dtype == (torch.float16 if enabled else None)


# ---------------------------------------------------------------- export
def test_export_fails_when_the_program_disagrees_with_the_model(monkeypatch, tmp_path, capsys):
    """tools/export.py exits 1 (not 0) when the exported program's logits differ from the eager model's."""
    from rs3d.commands import export as export_command
    from rs3d.inference.export import ExportReport

    class FakePredictor:
        def __init__(self, cfg_file, checkpoint, device):
            self.cfg = get_cfg()
            self.model, self.class_names = nn.Linear(1, 1), ["a", "b", "c", "d"]

    def fake_export(model, num_frames, crop_size, path, onnx_path):
        return ExportReport(path, (-1, 3, num_frames, crop_size, crop_size), diff)

    monkeypatch.setattr(export_command, "Predictor", FakePredictor)
    monkeypatch.setattr(export_command, "export_model", fake_export)
    for diff, status in ((0.5, 1), (2e-3, 1), (1e-5, 0)):
        monkeypatch.setattr("sys.argv", ["export", "--checkpoint", "x.pyth", "--output", str(tmp_path / "m.pt2")])
        with pytest.raises(SystemExit) as exit_info:
            export_command.console_main()
        assert exit_info.value.code == status, diff


def test_a_failed_export_save_leaves_the_previous_program(monkeypatch, tmp_path):
    from rs3d.inference.export import export_model

    path = tmp_path / "model.pt2"
    path.write_bytes(b"previous program")

    def broken_save(program, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"half a program")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch.export, "save", broken_save)
    model = nn.Sequential(nn.Conv3d(3, 2, 1), nn.AdaptiveAvgPool3d(1), nn.Flatten())
    with pytest.raises(OSError, match="No space"):
        export_model(model, 2, 4, str(path))
    assert path.read_bytes() == b"previous program" and os.listdir(tmp_path) == ["model.pt2"]
