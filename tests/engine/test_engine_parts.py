"""Recipe pieces checked against hand computations: LR schedule, weight-decay groups, EMA, checkpoints."""
import math
import os
import pickle

import pytest
import torch
from conftest import REPO_ROOT
from torch import nn

from rs3d.checkpoint import (
    CheckpointError,
    CheckpointManager,
    load_checkpoint,
    load_weights,
    rng_state,
    save_atomic,
    set_rng_state,
)
from rs3d.engine import (
    ModelEma,
    build_optimizer,
    build_scheduler,
    ema_decay,
    parameter_groups,
    scaled_lr,
    warmup_cosine,
)
from rs3d.models import ResNet3D


def tiny_model(num_classes=5):
    return ResNet3D(blocks=[1, 1], widths=[4, 8], num_classes=num_classes, stem_width=8, se_ratio=0.25,
                    self_gating=True, temporal_kernels=[1, 3], temporal_strides=[1, 1], spatial_strides=[1, 2])


def test_lr_schedule_key_steps():
    assert scaled_lr(0.8, 1024, 64) == pytest.approx(0.05)
    total, warm = 1000, 100
    assert warmup_cosine(0, total, warm) == 0.0
    assert warmup_cosine(50, total, warm) == pytest.approx(0.5)
    assert warmup_cosine(100, total, warm) == pytest.approx(1.0)
    assert warmup_cosine(550, total, warm) == pytest.approx(0.5)  # halfway through the cosine
    assert warmup_cosine(100 + 900 // 3, total, warm) == pytest.approx(0.5 * (1 + math.cos(math.pi / 3)))
    assert warmup_cosine(1000, total, warm) == pytest.approx(0.0)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.4)
    sched = build_scheduler(opt, total, warm)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and lrs[100] == pytest.approx(0.4) and lrs[550] == pytest.approx(0.2)
    assert max(lrs) == pytest.approx(0.4) and lrs[-1] < 1e-5


def test_weight_decay_only_on_conv_and_linear_weights():
    model = tiny_model()
    decay, no_decay = parameter_groups(model, 4e-5)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert decayed | exempt == set(names.values()) and not decayed & exempt
    # Independent rule written out by name: conv/linear weights decay, except the self-gating conv.
    expected = {n for n, p in model.named_parameters()
                if n.endswith("weight") and p.ndim > 1 and ".gate." not in n}
    assert decayed == expected
    assert any(".gate.fc.weight" in n for n in exempt) and any("bn" in n for n in exempt)
    assert any(".se.fc1.weight" in n for n in decayed) and "fc.weight" in decayed
    assert decay["weight_decay"] == 4e-5 and no_decay["weight_decay"] == 0.0


def test_ema_arithmetic_including_bn_buffers():
    torch.manual_seed(0)
    model = tiny_model()
    ema = ModelEma(model, decay=0.9)
    start = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()
    model(torch.randn(2, 3, 4, 16, 16))  # moves BN running stats and counters
    ema.update(model)  # t=0: d = min(0.9, 1/10) = 0.1
    d = ema_decay(0.9, 0)
    assert d == pytest.approx(0.1) and ema_decay(0.9, 90) == pytest.approx(0.9) and ema_decay(0.99, 8) == 0.5
    current = model.state_dict()
    for key, value in ema.module.state_dict().items():
        if value.dtype.is_floating_point:
            torch.testing.assert_close(value, d * start[key] + (1 - d) * current[key])
        else:
            assert torch.equal(value, current[key])  # num_batches_tracked is copied
    assert any("running_mean" in k for k in start)


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    """The disk fills up halfway through writing the new bytes: the old checkpoint stays whole."""
    from rs3d.utils import atomic

    path = str(tmp_path / "ckpt.pyth")
    save_atomic({"w": torch.ones(3)}, path)
    real_open = open

    class HalfWritten:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            self.file.write(bytes(data[: len(data) // 2]))
            self.file.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(atomic, "open", lambda *a, **k: HalfWritten(real_open(*a, **k)), raising=False)
    with pytest.raises(OSError, match="No space"):
        save_atomic({"w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.pyth"]  # no temporary file left behind


def test_manager_keeps_last_k_and_best(tmp_path):
    manager = CheckpointManager(str(tmp_path), keep_last=2)
    for epoch, best in [(1, True), (2, False), (3, True), (4, False)]:
        manager.save(epoch, {"epoch": epoch}, is_best=best)
    assert sorted(f for f in os.listdir(tmp_path) if not f.endswith(".sha256")) == [
        "checkpoint_best.pyth", "checkpoint_epoch_00003.pyth", "checkpoint_epoch_00004.pyth"]
    assert manager.latest().endswith("00004.pyth") and load_checkpoint(manager.best_path)["epoch"] == 3
    (tmp_path / ".tmp_abc.pyth").write_bytes(b"half")  # a crashed write is never picked up
    assert manager.latest().endswith("00004.pyth")


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pyth"
    with open(path, "wb") as f:
        pickle.dump({"model": Payload()}, f)
    with pytest.raises(CheckpointError, match="evil.pyth: refused"):
        load_checkpoint(str(path))
    torch.save({"model": {"w": torch.ones(1)}, "extra": Payload()}, tmp_path / "evil2.pyth")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(str(tmp_path / "evil2.pyth"))
    (tmp_path / "junk.pyth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pyth"):
        load_checkpoint(str(tmp_path / "junk.pyth"))


def test_rng_state_round_trip_survives_weights_only(tmp_path):
    import random

    import numpy as np

    state = rng_state()
    save_atomic({"rng": state}, str(tmp_path / "r.pyth"))
    expected = (random.random(), np.random.rand(), torch.rand(1))
    set_rng_state(load_checkpoint(str(tmp_path / "r.pyth"))["rng"])
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])


def test_fine_tuning_reinitialises_a_head_of_another_size(tmp_path):
    torch.manual_seed(0)
    source = tiny_model(num_classes=8)
    save_atomic({"model": source.state_dict(), "ema": None}, str(tmp_path / "src.pyth"))
    target = tiny_model(num_classes=3)
    fresh_head = target.fc.weight.clone()
    reinit = load_weights(target, str(tmp_path / "src.pyth"), strict=False)
    assert sorted(reinit) == ["fc.bias", "fc.weight"]
    assert torch.equal(target.fc.weight, fresh_head)
    assert torch.equal(target.stem.conv1.weight, source.stem.conv1.weight)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights(nn.Sequential(nn.Linear(2, 2)), str(tmp_path / "src.pyth"), strict=False)


def test_testing_and_prediction_load_strictly(tmp_path):
    """A checkpoint of another class count, or with a mangled tensor, is refused by name instead of scoring a
    partly random network (issue 25)."""
    torch.manual_seed(0)
    save_atomic({"model": tiny_model(num_classes=8).state_dict()}, str(tmp_path / "src.pyth"))
    with pytest.raises(CheckpointError, match=r"2 tensors of another shape \(fc.weight \(8, \d+\) vs \(3, \d+\)"):
        load_weights(tiny_model(num_classes=3), str(tmp_path / "src.pyth"))
    state = tiny_model(num_classes=8).state_dict()
    del state["stem.conv1.weight"]
    state["stem.extra"] = torch.zeros(1)
    save_atomic({"model": state}, str(tmp_path / "mangled.pyth"))
    with pytest.raises(CheckpointError, match=r"1 missing \(stem.conv1.weight\); 1 unknown to the model \(stem.extra"):
        load_weights(tiny_model(num_classes=8), str(tmp_path / "mangled.pyth"))
    assert load_weights(tiny_model(num_classes=8), str(tmp_path / "src.pyth")) == []


def test_pytorchvideo_zoo_checkpoint_loads_into_the_baseline(tmp_path):
    """A PySlowFast/pytorchvideo .pyth (``model_state``, DDP ``module.`` prefix, cfg as text) round-trips through
    pytorchvideo's own Slow R50 into rs3d's slow_r50 baseline: identical logits."""
    from pytorchvideo.models.hub.resnet import slow_r50

    from rs3d.config import load_config
    from rs3d.models import build_model

    torch.manual_seed(0)
    reference = slow_r50(pretrained=False).eval()  # pytorchvideo's own model, as its hub builds it
    for module in reference.modules():  # non-trivial BN statistics
        if isinstance(module, nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}
    torch.save({"epoch": 196, "model_state": state, "cfg": "TRAIN:\n  ENABLE: True\n"}, tmp_path / "SLOW_8x8.pyth")
    root = REPO_ROOT
    cfg = load_config(os.path.join(root, "configs/kinetics400/slow_r50.yaml"), ["DATA.TRAIN_CROP_SIZE", "224"])
    ours = build_model(cfg).eval()
    assert load_weights(ours, str(tmp_path / "SLOW_8x8.pyth")) == []
    clip = torch.randn(1, 3, 8, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(clip), reference(clip), rtol=1e-4, atol=1e-4)


def test_fused_sgd_is_chosen_on_gpu_only_and_matches_the_default_update():
    assert build_optimizer(tiny_model(), 0.1, 0.9, 1e-4).defaults["fused"] is None  # CPU: torch's default
    models = [tiny_model().eval(), tiny_model().eval()]  # eval: no dropout/drop-path draws to differ
    models[1].load_state_dict(models[0].state_dict())
    optimizers = [build_optimizer(m, 0.1, 0.9, 1e-4, fused=f) for m, f in zip(models, (False, True))]
    clip = torch.randn(2, 3, 4, 16, 16)
    for _ in range(3):
        for model, optimizer in zip(models, optimizers):
            model(clip).square().mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
