"""The one place where a config becomes model arguments: ``build_model(cfg)`` for every architecture."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fvcore.common.config import CfgNode
from torch import nn

from rs3d.config.loader import ConfigError
from rs3d.models.baselines import PYTORCHVIDEO_ARCHS, build_pytorchvideo_model
from rs3d.models.freeze import freeze_batchnorm, freeze_stages
from rs3d.models.pretrained import apply_init
from rs3d.models.resnet3d import RS_BLOCKS, ResNet3D, stage_widths

logger = logging.getLogger(__name__)

_BUILDERS: dict[str, Callable[[CfgNode], nn.Module]] = {}


def register(name: str) -> Callable[[Callable[[CfgNode], nn.Module]], Callable[[CfgNode], nn.Module]]:
    """Register ``fn(cfg) -> nn.Module`` under ``MODEL.ARCH == name``."""
    def wrap(fn: Callable[[CfgNode], nn.Module]) -> Callable[[CfgNode], nn.Module]:
        _BUILDERS[name] = fn
        return fn
    return wrap


def available_archs() -> list[str]:
    """Names accepted by ``MODEL.ARCH``."""
    return sorted(_BUILDERS)


def build_model(cfg: CfgNode, init: bool = True) -> nn.Module:
    """Build the ``MODEL.ARCH`` network: an ``nn.Module`` mapping (N, 3, T, H, W) to (N, num_classes).

    Its initial weights follow ``MODEL.INIT`` (random, timm ImageNet weights inflated to 3D, a checkpoint, or a
    baseline's published weights; see ``rs3d.models.pretrained``), and it carries its input facts as
    ``model.pretrained_cfg`` (:func:`input_config`), so inference needs no separate config. ``init=False`` skips
    ``MODEL.INIT`` (the caller loads trained weights next).
    """
    arch = cfg.MODEL.ARCH
    if arch not in _BUILDERS:
        raise ConfigError(f"MODEL.ARCH: unknown architecture {arch!r}; choose one of {', '.join(available_archs())}")
    if cfg.MODEL.NUM_CLASSES < 1:
        raise ConfigError(f"MODEL.NUM_CLASSES: {cfg.MODEL.NUM_CLASSES}; give the number of classes (0 is replaced "
                          "by the data's class count only when DATA.PATH_TO_DATA_DIR names its classes)")
    model = _BUILDERS[arch](cfg)
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


@register("resnet3d")
def _build_resnet3d(cfg: CfgNode) -> ResNet3D:
    r = cfg.MODEL.RESNET3D
    if r.BLOCKS:
        blocks = list(r.BLOCKS)
    elif r.DEPTH in RS_BLOCKS:
        blocks = list(RS_BLOCKS[r.DEPTH])
    else:
        raise ConfigError(f"MODEL.RESNET3D.DEPTH: {r.DEPTH} is not one of {sorted(RS_BLOCKS)} (or set BLOCKS)")
    widths = stage_widths(r.WIDTH_MULTIPLIER, len(blocks))
    try:
        return ResNet3D(
            blocks=blocks,
            widths=widths,
            num_classes=cfg.MODEL.NUM_CLASSES,
            in_channels=cfg.DATA.INPUT_CHANNEL_NUM,
            stem_type=r.STEM_TYPE,
            stem_width=r.STEM_WIDTH,
            stem_temporal_kernel=r.STEM_TEMPORAL_KERNEL,
            stem_temporal_stride=r.STEM_TEMPORAL_STRIDE,
            stem_pool=r.STEM_POOL,
            pool_temporal_stride=r.POOL_TEMPORAL_STRIDE,
            temporal_kernels=[list(k) for k in r.TEMPORAL_KERNELS_PER_BLOCK] or list(r.TEMPORAL_KERNELS),
            temporal_strides=list(r.TEMPORAL_STRIDES),
            spatial_strides=list(r.SPATIAL_STRIDES),
            se_ratio=r.SE_RATIO,
            self_gating=r.SELF_GATING,
            shortcut=r.SHORTCUT,
            drop_path_rate=r.DROP_PATH_RATE,
            dropout_rate=cfg.MODEL.DROPOUT_RATE,
            padding=r.PADDING,
            bn_eps=r.BN_EPS,
            bn_momentum=r.BN_MOMENTUM,
            conv_impl=r.CONV_IMPL,
            fused_tail=r.FUSED_TAIL,
        )
    except ValueError as e:
        raise ConfigError(f"MODEL.RESNET3D: {e}") from None


def _pytorchvideo_builder(arch: str) -> Callable[[CfgNode], nn.Module]:
    def build(cfg: CfgNode) -> nn.Module:
        try:
            return build_pytorchvideo_model(arch, cfg.MODEL.NUM_CLASSES, cfg.DATA.NUM_FRAMES,
                                            cfg.DATA.TRAIN_CROP_SIZE, cfg.MODEL.DROPOUT_RATE)
        except ValueError as e:
            raise ConfigError(f"MODEL.ARCH {arch}: {e} (see DATA.NUM_FRAMES, DATA.TRAIN_CROP_SIZE)") from None
    return build


for _arch in PYTORCHVIDEO_ARCHS:
    register(_arch)(_pytorchvideo_builder(_arch))
