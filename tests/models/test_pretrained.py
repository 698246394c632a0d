"""MODEL.INIT: timm ImageNet ResNet-RS weights inflated to 3D (through timm's own file loading, offline), rs3d /
PySlowFast / pytorchvideo checkpoints read without running pickled code, and the report of what was loaded."""
import logging
import pickle

import numpy as np
import pytest
import timm
import torch
from conftest import randomised
from torch import nn

from rs3d.checkpoint import CheckpointError
from rs3d.checkpoint.formats import caffe2_blobs, load_weights_file
from rs3d.config import ConfigError, load_config
from rs3d.models import build_model
from rs3d.models.baselines import PYTORCHVIDEO_ARCHS, published_weights
from rs3d.models.pretrained import init_from_2d, init_from_checkpoint

# A tiny timm ResNet-RS and the rs3d 3D model of the same widths (timm's deep stem is stem_width, stem_width,
# 2 * stem_width; rs3d's STEM_WIDTH is the output).
TIMM_TINY = dict(layers=(1, 1, 1, 1), channels=(8, 16, 32, 64), stem_width=8)
RS3D_TINY = ["MODEL.RESNET3D.BLOCKS", "[1,1,1,1]", "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.125",
             "MODEL.RESNET3D.STEM_WIDTH", "16", "MODEL.RESNET3D.DROP_PATH_RATE", "0.0", "MODEL.DROPOUT_RATE", "0.0"]
TIMM_LAYOUT = ["MODEL.RESNET3D.STEM_POOL", "conv", "MODEL.RESNET3D.SHORTCUT", "avg_down",
               "MODEL.RESNET3D.SELF_GATING", "False"]


def tiny_timm(num_classes: int = 1000) -> nn.Module:
    torch.manual_seed(0)
    return randomised(timm.create_model("resnetrs50", num_classes=num_classes, **TIMM_TINY))


def tiny_cfg(*extra: str, num_classes: int = 5):
    return load_config("configs/toy/rs3d_tiny.yaml", RS3D_TINY + ["MODEL.NUM_CLASSES", str(num_classes), *extra])


def identical_frames(frames: int = 4, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    frame = torch.rand(2, 3, size, size)
    return frame, frame.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()


@pytest.mark.parametrize("method", ["center", "mean"])
def test_timm_layout_takes_every_timm_weight_and_reproduces_its_features(method):
    reference = tiny_timm()
    cfg = tiny_cfg(*TIMM_LAYOUT)
    model = build_model(cfg).eval()
    report = init_from_2d(model, reference.state_dict(), method, "tiny timm")
    assert report.unused == [] and report.left_random == []
    assert report.reinitialised == ["fc.weight", "fc.bias"]  # 1000 ImageNet classes vs 5
    assert any(".conv1." in n for n in report.inflated) and "stem.conv1.weight" in report.inflated
    frame, clip = identical_frames()
    with torch.no_grad():
        expected = reference.forward_features(frame).mean(dim=(2, 3))
        features = model.forward_features(clip).mean(dim=(2, 3, 4))
    assert expected.abs().max() > 0.1
    if method == "center":  # exact at any clip length
        assert (features - expected).abs().max() <= 1e-4
    else:  # zero temporal padding makes "mean" differ at the clip ends
        assert (features - expected).abs().max() > 1e-4


def test_tf_layout_reports_what_does_not_transfer(caplog):
    reference = tiny_timm()
    model = build_model(tiny_cfg())  # max-pool stem, strided shortcuts, self-gating (the Kinetics layout)
    report = init_from_2d(model, reference.state_dict(), "mean", "tiny timm")
    assert sorted(report.unused) == sorted(k for k in reference.state_dict() if k.startswith("maxpool."))
    assert report.left_random and all(".gate." in n or "self_gating" in n or ".sg." in n or "gating" in n
                                      for n in report.left_random), report.left_random
    assert "stages.1.0.shortcut.conv.weight" in report.inflated  # strided 1x1x1 conv takes timm's avg-down conv
    assert "left random" in report.summary() and "unused from the source 5" in report.summary()


def test_config_init_goes_through_timm_file_loading(tmp_path, monkeypatch, caplog):
    """MODEL.INIT.FROM timm:... + MODEL.INIT.FILE reach timm.create_model(pretrained=True, pretrained_cfg_overlay=
    dict(file=...)): timm's own loader reads the file, as it would a download."""
    reference = tiny_timm()
    path = tmp_path / "resnetrs_tiny.pth"
    torch.save(reference.state_dict(), path)
    real_create = timm.create_model
    calls = []

    def create_tiny(name, pretrained=False, **kwargs):  # the real resnetrs50 at tiny widths, same loading path
        calls.append((name, pretrained, kwargs.get("pretrained_cfg_overlay")))
        return real_create(name, pretrained=pretrained, **kwargs, **TIMM_TINY)

    monkeypatch.setattr(timm, "create_model", create_tiny)
    cfg = tiny_cfg(*TIMM_LAYOUT, "MODEL.INIT.FROM", "timm:resnetrs50", "MODEL.INIT.FILE", str(path),
                   "MODEL.INIT.INFLATE", "center")
    with caplog.at_level(logging.INFO, logger="rs3d.models.pretrained"):
        model = build_model(cfg).eval()
    assert calls == [("resnetrs50", True, {"file": str(path)})]
    assert "init from timm:resnetrs50: loaded" in caplog.text and "re-initialised 2 (fc.weight, fc.bias)" in caplog.text
    frame, clip = identical_frames(frames=3)
    with torch.no_grad():
        assert (model.forward_features(clip).mean(dim=(2, 3, 4))
                - reference.forward_features(frame).mean(dim=(2, 3))).abs().max() <= 1e-4
    assert model.pretrained_cfg["init"] == "timm:resnetrs50"


@pytest.mark.slow
def test_full_resnetrs50_file_inflates_to_identical_logits(tmp_path):
    """The real resnetrs50 (35.7M parameters) saved to a file and loaded by timm as a download would be."""
    torch.manual_seed(0)
    reference = randomised(timm.create_model("resnetrs50"))
    path = tmp_path / "resnetrs50.pth"
    torch.save(reference.state_dict(), path)
    cfg = load_config("configs/finetune/rs3d_50_imagenet.yaml", [
        "MODEL.NUM_CLASSES", "1000", "MODEL.INIT.FILE", str(path), "MODEL.INIT.INFLATE", "center",
        "MODEL.INIT.RESET_HEAD", "False", "MODEL.DROPOUT_RATE", "0.0", "MODEL.RESNET3D.DROP_PATH_RATE", "0.0"])
    model = build_model(cfg).eval()
    frame, clip = identical_frames(frames=4, size=64)
    with torch.no_grad():
        expected, logits = reference(frame), model(clip)
    assert (logits - expected).abs().max() <= 1e-4


def test_unknown_sources_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        build_model(tiny_cfg("MODEL.INIT.FROM", str(tmp_path / "nope.pyth")))
    with pytest.raises(ConfigError, match="INFLATE"):
        build_model(tiny_cfg("MODEL.INIT.FROM", "timm:resnetrs50", "MODEL.INIT.INFLATE", "middle"))
    with pytest.raises(ConfigError, match="no published weights"):
        build_model(tiny_cfg("MODEL.INIT.FROM", "pytorchvideo"))


def test_rs3d_checkpoint_start_keeps_the_body_and_reinitialises_the_head(tmp_path):
    source = build_model(tiny_cfg(num_classes=8))
    path = tmp_path / "model_final.pyth"
    torch.save({"model": source.state_dict(), "config": "", "class_names": []}, path)
    torch.manual_seed(5)
    model = build_model(tiny_cfg("MODEL.INIT.FROM", str(path), num_classes=3))
    assert model.fc.out_features == 3
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(model.state_dict()[key], value), key
    fresh = build_model(tiny_cfg(num_classes=8))
    report = init_from_checkpoint(fresh, str(path), reset_head=True)
    assert report.reinitialised == ["fc.weight", "fc.bias"]
    assert not torch.equal(fresh.fc.weight, source.fc.weight)


def test_pytorchvideo_pyth_with_numpy_scalars_loads_but_code_is_refused(tmp_path):
    """PySlowFast-style .pyth: model_state under DDP's module. prefix, a NumPy epoch, the config text."""
    cfg = load_config("configs/kinetics400/x3d_xs.yaml", ["MODEL.NUM_CLASSES", "4", "DATA.TRAIN_CROP_SIZE", "64"])
    source = build_model(cfg)
    path = tmp_path / "X3D_XS.pyth"
    torch.save({"epoch": np.int64(300), "lr": np.float64(0.1), "cfg": "TRAIN:\n  ENABLE: True\n",
                "model_state": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    with pytest.raises(pickle.UnpicklingError):  # plain weights_only loading refuses the NumPy scalars
        torch.load(path, weights_only=True)
    model = build_model(load_config("configs/kinetics400/x3d_xs.yaml", [
        "MODEL.NUM_CLASSES", "4", "DATA.TRAIN_CROP_SIZE", "64", "MODEL.INIT.FROM", str(path)]))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in source.state_dict().items())

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pyth"
    torch.save({"model_state": {}, "extra": Payload()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_weights_file(str(evil))


def test_caffe2_pkl_goes_through_a_restricted_unpickler(tmp_path):
    blobs = {"conv1_w": np.ones((4, 3, 1, 7, 7), np.float32), "conv1_w_momentum": np.zeros(3, np.float32),
             "res_conv1_bn_s": np.arange(4, dtype=np.float32), "model_iter": np.array(5)}
    good = tmp_path / "SLOW_8x8_R50.pkl"
    good.write_bytes(pickle.dumps({"blobs": blobs}, protocol=2))
    loaded = caffe2_blobs(str(good))
    assert set(loaded) == {"conv1_w", "res_conv1_bn_s", "model_iter"}
    assert torch.equal(loaded["res_conv1_bn_s"], torch.arange(4.0))
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"blobs": {"x": np.zeros(1)}, "run": eval}, protocol=2))
    with pytest.raises(CheckpointError, match="not allowed"):
        caffe2_blobs(str(evil))


def test_every_pytorchvideo_baseline_with_published_weights_is_listed():
    urls = published_weights()
    assert set(urls) == set(PYTORCHVIDEO_ARCHS)
    assert urls["slow_r50"].endswith("SLOW_8x8_R50.pyth")


def test_frozen_bn_and_stages_do_not_change_in_training():
    cfg = tiny_cfg("MODEL.INIT.FREEZE_STAGES", "2", "MODEL.INIT.FREEZE_BN", "True")
    model = build_model(cfg).train()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("stem.", "stages.0.", "stages.1.")) for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith(("stages.2.", "fc.")))
    assert not any(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(torch.rand(2, 3, 4, 32, 32)).sum().backward()
    optimizer.step()
    after = model.state_dict()
    assert set(before) == set(after)  # same keys as an unfrozen model: checkpoints load either way
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("stages.2.", "stages.3.", "fc.")) for k in changed)
    assert not any("running_" in k for k in changed)  # no BN statistics moved
    with pytest.raises(ConfigError, match="FREEZE_STAGES"):
        build_model(tiny_cfg("MODEL.INIT.FREEZE_STAGES", "5"))
    baseline = build_model(load_config("configs/kinetics400/x3d_xs.yaml", [
        "MODEL.NUM_CLASSES", "3", "DATA.TRAIN_CROP_SIZE", "64", "MODEL.INIT.FREEZE_STAGES", "1"]))
    frozen = {n.split(".")[1] for n, p in baseline.named_parameters() if not p.requires_grad}
    assert frozen == {"0", "1"}


def test_pyslowfast_caffe2_pkl_loads_into_the_pytorchvideo_baseline(tmp_path):
    cfg = load_config("configs/kinetics400/c2d_r50.yaml", ["MODEL.NUM_CLASSES", "6"])
    source = build_model(cfg)
    bn = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}
    stage_of = {1: 2, 3: 3, 4: 4, 5: 5}  # pytorchvideo block index -> Caffe2 res<stage> (block 2 is a max-pool)
    blobs = {}
    for key, value in source.state_dict().items():
        parts = key.split(".")
        if parts[-1] == "num_batches_tracked":
            continue
        if key == "blocks.0.conv.weight":
            name = "conv1_w"
        elif key.startswith("blocks.0.norm."):
            name = f"res_conv1_bn_{bn[parts[-1]]}"
        elif ".proj." in key:
            name = f"pred_{parts[-1][0]}"
        else:  # blocks.<i>.res_blocks.<j>.branch1_conv / branch1_norm / branch2.conv_a / branch2.norm_a ...
            prefix = f"res{stage_of[int(parts[1])]}_{parts[3]}_"
            if parts[4] == "branch1_conv":
                name = prefix + "branch1_w"
            elif parts[4] == "branch1_norm":
                name = prefix + f"branch1_bn_{bn[parts[5]]}"
            else:
                kind, letter = parts[5].split("_")
                name = prefix + (f"branch2{letter}_w" if kind == "conv" else f"branch2{letter}_bn_{bn[parts[6]]}")
        blobs[name] = value.numpy()
        blobs[name + "_momentum"] = np.zeros(1, np.float32)
    path = tmp_path / "C2D_NOPOOL_8x8_R50.pkl"
    path.write_bytes(pickle.dumps({"blobs": {**blobs, "lr": np.array(0.1), "model_iter": np.array(9)}}, protocol=2))
    model = build_model(load_config("configs/kinetics400/c2d_r50.yaml", ["MODEL.NUM_CLASSES", "6",
                                                                           "MODEL.INIT.FROM", str(path)]))
    for key, value in source.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(model.state_dict()[key], value), key
