"""The architecture registry: every registered model keeps the backbone contract (rs3d.models.registry's docstring),
registration happens where a model is defined, and config sections become the registered function's arguments."""

import pytest
import torch
from torch import nn

from rs3d.config import ConfigError, load_config
from rs3d.models import available_archs, build_model, create_model, register_model, registry
from rs3d.models.pretrained import head_prefixes
from rs3d.models.registry import arch_entry, check_backbone

SMALL = ["MODEL.NUM_CLASSES", "7", "DATA.NUM_FRAMES", "8", "DATA.TRAIN_CROP_SIZE", "64",
         "MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.25"]


@pytest.mark.parametrize("arch", available_archs())  # ~4 s on 2 idle cores for the nine built-in ones
def test_every_registered_model_keeps_the_backbone_contract(arch):
    cfg = load_config(None, ["MODEL.ARCH", arch, *SMALL, "MODEL.INIT.FREEZE_STAGES", "1"])
    model = build_model(cfg)
    check_backbone(model, 7, (3, 8, 64, 64), test_crop=96)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    stem = "stem." if hasattr(model, "stem") else "blocks.0."
    assert frozen and all(n.startswith(stem) for n, _ in model.named_parameters() if n.startswith(stem))
    assert {n for n in frozen if n.startswith(stem)} == {n for n, _ in model.named_parameters() if n.startswith(stem)}
    heads = head_prefixes(model)  # what fine-tuning re-initialises: the 7-way classifier's weight and bias
    assert sorted(p.shape[0] for n, p in model.named_parameters() if n.startswith(heads)) == [7, 7]


def test_the_checker_names_what_breaks_the_contract():
    class NoStages(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 5)

        def forward(self, x):
            return self.fc(x.mean(dim=(2, 3, 4)))

    class WrongShape(NoStages):
        def forward(self, x):
            return super().forward(x)[:, :4]

    class NoHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.stages, self.classifier = nn.Identity(), nn.Sequential(), nn.Linear(3, 5)

        def forward(self, x):
            return self.classifier(x.mean(dim=(2, 3, 4)))

    with pytest.raises(ValueError, match=r"WrongShape: .* gives \(2, 4\) in train mode, not \(2, 5\) logits"):
        check_backbone(WrongShape(), 5)
    with pytest.raises(ValueError, match="NoStages: no stages to freeze"):
        check_backbone(NoStages(), 5)
    with pytest.raises(ValueError, match=r"NoHead: no classifier under fc\."):
        check_backbone(NoHead(), 5)


def test_models_register_where_they_are_defined():
    assert arch_entry("resnet3d").module == "rs3d.models.resnet3d"
    assert arch_entry("resnet3d").section == "MODEL.RESNET3D"
    assert {arch_entry(a).module for a in ("slow_r50", "x3d_m")} == {"rs3d.models.baselines"}
    with pytest.raises(KeyError, match="unknown architecture 'nope'; choose one of c2d_r50"):
        arch_entry("nope")


def test_a_registered_function_gets_plain_arguments_from_the_config(monkeypatch):
    monkeypatch.setattr(registry, "_ARCHS", dict(registry._ARCHS))  # leave the real registry as it was
    seen = {}

    @register_model
    def probe_net(num_classes: int, num_frames: int, crop_size: int) -> nn.Module:
        seen.update(num_classes=num_classes, num_frames=num_frames, crop_size=crop_size)
        if crop_size < 32:
            raise ValueError(f"crop {crop_size} below 32")
        model = nn.Module()
        model.stem, model.stages, model.fc = nn.Identity(), nn.Sequential(), nn.Linear(3, num_classes)
        model.forward = lambda x: model.fc(x.mean(dim=(2, 3, 4)))
        return model

    assert "probe_net" in available_archs()
    build_model(load_config(None, ["MODEL.ARCH", "probe_net", *SMALL]))
    assert seen == {"num_classes": 7, "num_frames": 8, "crop_size": 64}  # the SMALL overrides, nothing else
    with pytest.raises(ConfigError, match=r"MODEL.ARCH probe_net: crop 16 below 32 \(see "
                                          r"MODEL.NUM_CLASSES, DATA.NUM_FRAMES, DATA.TRAIN_CROP_SIZE\)$"):
        build_model(load_config(None, ["MODEL.ARCH", "probe_net", "DATA.TRAIN_CROP_SIZE", "16"]))
    with pytest.raises(ValueError, match="'probe_net' is already registered by test_registry"):
        register_model("probe_net")(lambda num_classes: None)


def test_section_keys_are_arguments_and_keywords():
    model = create_model("rs3d_tiny", num_classes=4, stem_width=8, se_ratio=0.0)
    assert model.stem.conv3.out_channels == 8 and model.fc.out_features == 4
    assert not any(type(m).__name__ == "SqueezeExcite3d" for m in model.modules())
    with pytest.raises(ConfigError, match=r"MODEL\.RESNET3D\.DEPTH: 34 is not one of \[50, 101"):
        build_model(_with(load_config(None), "MODEL.RESNET3D.DEPTH", 34))


def _with(cfg, key, value):
    """A config with ``key`` set past the load-time checks (as a config built in code can be)."""
    cfg = cfg.clone()
    cfg.defrost()
    node = cfg
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return cfg


def test_the_registry_is_public_and_keeps_its_old_names():
    import rs3d

    assert rs3d.register_model is register_model is registry.register
    from rs3d.models.registry import create_model as old_home  # where create_model lived before

    assert old_home is rs3d.create_model
    assert rs3d.available_archs() == available_archs()
    assert torch.nn.Module in type(create_model("rs3d_tiny")).__mro__
