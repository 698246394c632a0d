"""Models from configs and names: ``build_model(cfg)`` (the one place where config keys become a registered
model's arguments, :mod:`rs3d.models.registry`) and ``create_model(name, pretrained, num_classes, ...)``.

``create_model`` names are the shipped configs (``rs3d.config.catalog``): ``rs3d_50`` ... ``rs3d_420``, ``r3d_50``,
the pytorchvideo baselines (``slow_r50``, ``i3d_r50``, ``c2d_r50``, ``r2plus1d_r50``, ``x3d_xs`` ... ``x3d_l``) and
the toy models (``rs3d_tiny`` ...). ``create_model(name)`` and ``build_model(get_config(name))`` are the same
network, and it carries ``model.pretrained_cfg`` (frames, stride, crops, mean/std) for inference.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fvcore.common.config import CfgNode
from torch import nn

import rs3d.models.baselines  # noqa: F401 - registers the pytorchvideo baselines
import rs3d.models.resnet3d  # noqa: F401 - registers resnet3d
from rs3d.checkpoint import hub
from rs3d.checkpoint.hub import is_pretrained_source
from rs3d.config.catalog import find_config, list_model_names
from rs3d.config.loader import ConfigError, config_from_text, load_config
from rs3d.models.freeze import freeze_batchnorm, freeze_stages
from rs3d.models.pretrained import apply_init
from rs3d.models.registry import COMMON_ARGUMENTS, ArchEntry, ModelArgumentError, arch_entry, available_archs

logger = logging.getLogger(__name__)


def build_model(cfg: CfgNode, init: bool = True) -> nn.Module:
    """Build the ``MODEL.ARCH`` network: an ``nn.Module`` mapping (N, 3, T, H, W) to (N, num_classes).

    Its initial weights follow ``MODEL.INIT`` (random, timm ImageNet weights inflated to 3D, a checkpoint, or a
    baseline's published weights; see ``rs3d.models.pretrained``), and it carries its input facts as
    ``model.pretrained_cfg`` (:func:`input_config`), so inference needs no separate config. ``init=False`` skips
    ``MODEL.INIT`` (the caller loads trained weights next).
    """
    arch = cfg.MODEL.ARCH
    try:
        entry = arch_entry(arch)
    except KeyError:
        raise ConfigError(f"MODEL.ARCH: unknown architecture {arch!r}; choose one of {', '.join(available_archs())}"
                          ) from None
    if cfg.MODEL.NUM_CLASSES < 1:
        raise ConfigError(f"MODEL.NUM_CLASSES: {cfg.MODEL.NUM_CLASSES}; give the number of classes (0 is replaced "
                          "by the data's class count only when DATA.PATH_TO_DATA_DIR names its classes)")
    model = build_registered(entry, cfg)
    options = cfg.MODEL.INIT
    if init:
        apply_init(model, options.FROM, arch, options.FILE, options.INFLATE, options.RESET_HEAD)
    try:
        frozen = freeze_stages(model, options.FREEZE_STAGES)
    except ValueError as e:
        raise ConfigError(f"MODEL.INIT.FREEZE_STAGES: {e}") from None
    if options.FREEZE_BN:
        freeze_batchnorm(model)
    if frozen or options.FREEZE_BN:
        logger.info("frozen: %d parameter tensors (stem and %d stages)%s", len(frozen), max(options.FREEZE_STAGES, 0),
                    ", every BatchNorm" if options.FREEZE_BN else "")
    model.pretrained_cfg = input_config(cfg)
    return model


def input_config(cfg: CfgNode) -> dict:
    """What a model expects and where its weights came from, as timm's ``pretrained_cfg``: clip length and stride,
    crops, normalisation (pixels / 255, then ``(x - mean) / std`` when ``normalization == "mean_std"``)."""
    d = cfg.DATA
    mean_std = d.NORMALIZATION == "mean_std"
    return {
        "arch": cfg.MODEL.ARCH,
        "num_classes": cfg.MODEL.NUM_CLASSES,
        "num_frames": d.NUM_FRAMES,
        "sampling_rate": d.SAMPLING_RATE,
        "target_fps": d.TARGET_FPS,
        "input_size": (d.INPUT_CHANNEL_NUM, d.NUM_FRAMES, d.TRAIN_CROP_SIZE, d.TRAIN_CROP_SIZE),
        "test_input_size": (d.INPUT_CHANNEL_NUM, d.NUM_FRAMES, d.TEST_CROP_SIZE, d.TEST_CROP_SIZE),
        "crop_size": d.TRAIN_CROP_SIZE,
        "test_crop_size": d.TEST_CROP_SIZE,
        "normalization": d.NORMALIZATION,
        "mean": tuple(d.MEAN) if mean_std else (0.0, 0.0, 0.0),
        "std": tuple(d.STD) if mean_std else (1.0, 1.0, 1.0),
        "init": cfg.MODEL.INIT.FROM,
    }


def model_arguments(entry: ArchEntry, cfg: CfgNode) -> dict[str, Any]:
    """The keyword arguments ``cfg`` gives ``entry``'s function: the common ones it takes, then its section's keys
    in lower case (``MODEL.RESNET3D.BN_EPS`` -> ``bn_eps``)."""
    kwargs = {key: _lookup(cfg, where) for key, where in COMMON_ARGUMENTS.items() if entry.accepts(key, named=True)}
    for key, value in (_lookup(cfg, entry.section).items() if entry.section else ()):
        if not entry.accepts(key.lower()):
            raise ConfigError(f"{entry.section}.{key}: not an argument of {entry.module}.{entry.fn.__name__}")
        kwargs[key.lower()] = list(value) if isinstance(value, tuple) else value
    return kwargs


def build_registered(entry: ArchEntry, cfg: CfgNode) -> nn.Module:
    """Call ``entry``'s function with the config's arguments; its ``ValueError`` becomes a ConfigError naming the
    key (:class:`ModelArgumentError`), the section, or the common keys the function takes."""
    try:
        return entry.fn(**model_arguments(entry, cfg))
    except ModelArgumentError as e:
        if entry.section:
            raise ConfigError(f"{entry.section}.{e.argument.upper()}: {e}") from None
        raise ConfigError(f"MODEL.ARCH {entry.name}: {e.argument}: {e}") from None
    except ValueError as e:
        where = entry.section or f"MODEL.ARCH {entry.name}"
        keys = [where for key, where in COMMON_ARGUMENTS.items() if entry.accepts(key, named=True)]
        hint = "" if entry.section or not keys else f" (see {', '.join(keys)})"
        raise ConfigError(f"{where}: {e}{hint}") from None


def _lookup(cfg: CfgNode, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


#: Config sections searched, in order, for a ``create_model`` keyword (``depth`` -> MODEL.RESNET3D.DEPTH); the
#: architecture's own section (its registration) comes second.
KEYWORD_SECTIONS = ("MODEL", "MODEL.INIT", "DATA")


def keyword_sections(cfg: CfgNode) -> tuple[str, ...]:
    """The sections ``create_model`` keywords are looked up in: :data:`KEYWORD_SECTIONS` with the architecture's
    own section (``MODEL.RESNET3D`` for resnet3d) second."""
    try:
        own = arch_entry(cfg.MODEL.ARCH).section
    except KeyError:
        own = ""
    return (KEYWORD_SECTIONS[0], *([own] if own else []), *KEYWORD_SECTIONS[1:])


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
    sections = keyword_sections(cfg)
    hits = []
    for section in sections:
        node = _lookup(cfg, section)
        if keyword.upper() in node and not isinstance(node[keyword.upper()], CfgNode):
            hits.append(f"{section}.{keyword.upper()}")
    if not hits:
        raise ConfigError(f"create_model: unknown keyword {keyword!r} (keywords name a key of "
                          f"{', '.join(sections)} in lower case, e.g. depth=101, num_frames=16)")
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
