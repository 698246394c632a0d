"""Models by name: ``list_models()``, ``get_config(name)`` and ``create_model(name, pretrained, num_classes, ...)``.

Names are the shipped configs (``rs3d.config.catalog``): ``rs3d_50`` ... ``rs3d_420``, ``r3d_50``, the pytorchvideo
baselines (``slow_r50``, ``i3d_r50``, ``c2d_r50``, ``r2plus1d_r50``, ``x3d_xs`` ... ``x3d_l``) and the toy models
(``rs3d_tiny`` ...). A model is built by ``build_model`` from its config, so ``create_model(name)`` and
``build_model(get_config(name))`` are the same network, and it carries ``model.pretrained_cfg`` (frames, stride,
crops, mean/std) for inference.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fvcore.common.config import CfgNode
from torch import nn

from rs3d.checkpoint import hub
from rs3d.checkpoint.hub import is_pretrained_source
from rs3d.config.catalog import find_config, list_model_names
from rs3d.config.loader import ConfigError, config_from_text, load_config
from rs3d.models.build import build_model

#: Config sections searched, in order, for a ``create_model`` keyword (``depth`` -> MODEL.RESNET3D.DEPTH).
KEYWORD_SECTIONS = ("MODEL", "MODEL.RESNET3D", "MODEL.INIT", "DATA")


def list_models(pattern: str = "*") -> list[str]:
    """Names ``create_model`` accepts, sorted; ``pattern`` is shell-style (``"x3d_*"``)."""
    return list_model_names(pattern)


def get_config(name: str, overrides: Sequence[str] = ()) -> CfgNode:
    """The frozen config of a shipped model or config (``"rs3d_50"``, ``"finetune/rs3d_50_imagenet"``) with
    ``KEY VALUE`` overrides."""
    return load_config(find_config(name), list(overrides))


def keyword_to_key(cfg: CfgNode, keyword: str) -> str:
    """``num_classes`` -> ``MODEL.NUM_CLASSES``; a dotted upper-case key is taken as it is. Ambiguous or unknown
    keywords are a ConfigError."""
    if "." in keyword or keyword.isupper():
        return keyword
    hits = []
    for section in KEYWORD_SECTIONS:
        node = cfg
        for part in section.split("."):
            node = node[part]
        if keyword.upper() in node and not isinstance(node[keyword.upper()], CfgNode):
            hits.append(f"{section}.{keyword.upper()}")
    if not hits:
        raise ConfigError(f"create_model: unknown keyword {keyword!r} (keywords name a key of "
                          f"{', '.join(KEYWORD_SECTIONS)} in lower case, e.g. depth=101, num_frames=16)")
    if len(hits) > 1:
        raise ConfigError(f"create_model: keyword {keyword!r} is ambiguous ({', '.join(hits)}); use cfg_overrides")
    return hits[0]


def create_model(
    name: str,
    pretrained: bool | str | None = None,
    num_classes: int | None = None,
    cfg_overrides: dict[str, Any] | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a named model.

    Args:
        name: one of :func:`list_models` (or any shipped config name, e.g. ``"finetune/rs3d_50_imagenet"``), or a
            shared model: ``"hf-hub:org/name"`` or a local folder written by ``rs3d-export --format safetensors``
            (its config, and its weights unless ``pretrained=False``).
        pretrained: where the initial weights come from. ``None``: what the config says (``MODEL.INIT``; random
            for the zoo configs). ``False``: random, whatever the config says. ``True``: the model's published
            start: ImageNet ``timm:resnetrs<depth>`` inflated to 3D for RS3D models, the published Kinetics weights
            for pytorchvideo baselines. A string: a ``MODEL.INIT.FROM`` value (``"timm:resnetrs50"``,
            ``"pytorchvideo"``, a checkpoint path).
        num_classes: classifier size (default: the config's, 400 for Kinetics configs); a pretrained head of
            another size is re-initialised.
        cfg_overrides: ``{"SOLVER.BASE_LR": 0.1, ...}`` full config keys.
        **overrides: config keys in lower case from MODEL, MODEL.RESNET3D, MODEL.INIT or DATA, e.g.
            ``depth=101``, ``temporal_kernels=[1, 1, 3, 3]``, ``num_frames=16``, ``dropout_rate=0.2``,
            ``file="resnetrs50.safetensors"`` (local timm weights), ``inflate="center"``.

    Returns:
        An ``nn.Module`` mapping ``(N, 3, T, H, W)`` float clips to ``(N, num_classes)`` logits, with
        ``model.pretrained_cfg`` holding its input facts and ``model.default_cfg`` the full config text.
    """
    shared = is_pretrained_source(name)  # a pretrained folder or hf-hub:org/name: its config, its weights
    cfg = pretrained_folder_config(name) if shared else get_config(name)
    pairs: dict[str, Any] = dict(cfg_overrides or {})
    if num_classes is not None:
        pairs["MODEL.NUM_CLASSES"] = num_classes
    for keyword, value in overrides.items():
        pairs[keyword_to_key(cfg, keyword)] = value
    if pretrained is False:
        pairs["MODEL.INIT.FROM"] = ""
    elif shared and pretrained in (None, True):
        pairs["MODEL.INIT.FROM"] = name
    elif pretrained is True:
        pairs["MODEL.INIT.FROM"] = default_pretrained_source(cfg)
    elif isinstance(pretrained, str):
        pairs["MODEL.INIT.FROM"] = pretrained
    elif pretrained is not None:
        raise ConfigError(f"create_model: pretrained must be None, a bool or a source string, got {pretrained!r}")
    opts = [item for key, value in pairs.items() for item in (key, repr(value))]
    cfg = pretrained_folder_config(name, opts) if shared else get_config(name, opts)
    model = build_model(cfg)
    model.default_cfg = cfg.dump()
    return model


def pretrained_folder_config(source: str, overrides: Sequence[str] = ()) -> CfgNode:
    """The config stored in a pretrained folder or ``hf-hub:org/name`` (``rs3d.checkpoint.hub``), with overrides."""
    text = hub.config_text(source)
    if not text:
        raise ConfigError(f"{source}: holds no {hub.CONFIG}; build the model from a config and load the weights "
                          "with MODEL.INIT.FROM instead")
    return config_from_text(text, f"{source} ({hub.CONFIG})", list(overrides))


def default_pretrained_source(cfg: CfgNode) -> str:
    """The published start of a config's architecture: ``timm:resnetrs<depth>`` or ``pytorchvideo``."""
    if cfg.MODEL.INIT.FROM:
        return cfg.MODEL.INIT.FROM
    if cfg.MODEL.ARCH == "resnet3d":
        depth = cfg.MODEL.RESNET3D.DEPTH
        if cfg.MODEL.RESNET3D.BLOCKS or cfg.MODEL.RESNET3D.WIDTH_MULTIPLIER != 1.0:
            raise ConfigError("create_model(pretrained=True): no published weights for a custom BLOCKS / "
                              "WIDTH_MULTIPLIER; pass pretrained='<checkpoint path>'")
        return f"timm:resnetrs{depth}"
    from rs3d.models.baselines import published_weights

    if cfg.MODEL.ARCH in published_weights():
        return "pytorchvideo"
    raise ConfigError(f"create_model(pretrained=True): {cfg.MODEL.ARCH} has no published weights")
