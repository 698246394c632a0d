"""The allowed values of every config key that has them, checked once when a config is loaded.

:data:`RULES` is the one table: key -> :class:`Choice` (a fixed set of values), :class:`Number` (a range) or
:class:`Numbers` (a list of them). A wrong value stops with one line naming the source, the key, the value and
what is allowed, before any data is read or any model is built. Adding a key with fixed values is one line here.
The data and model layers keep their own constants (decoders, RandAugment policies...); tests/config/test_config_validation.py
checks that this table agrees with them.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fvcore.common.config import CfgNode

from rs3d.config.catalog import ConfigError

AUTO = "auto"


@dataclass(frozen=True)
class Choice:
    """One of ``values``; skipped when the key named by ``unless`` is set (truthy)."""

    values: tuple
    unless: str = ""

    def problem(self, value: Any) -> str | None:
        if value in self.values and type(value) in {type(v) for v in self.values}:
            return None
        return f"{value!r} is not one of {', '.join(repr(v) if v == '' else str(v) for v in self.values)}"


@dataclass(frozen=True)
class Number:
    """A number in [low, high] (``open_low`` / ``open_high`` exclude the ends); ``integer`` asks for an int;
    ``auto`` also accepts the string "auto"."""

    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    open_low: bool = False
    open_high: bool = False
    auto: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low > -math.inf and self.high < math.inf:
            rng = f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        elif self.low > -math.inf:
            rng = f"{'>' if self.open_low else '>='} {self.low:g}"
        elif self.high < math.inf:
            rng = f"{'<' if self.open_high else '<='} {self.high:g}"
        else:
            rng = ""
        return f"{'auto or ' if self.auto else ''}{kind} {rng}".strip()

    def problem(self, value: Any) -> str | None:
        if self.auto and value == AUTO:
            return None
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (not numeric or (self.integer and not isinstance(value, int)) or not math.isfinite(value)
                or value < self.low or value > self.high or (self.open_low and value == self.low)
                or (self.open_high and value == self.high)):
            return f"{value!r} is not {self.describe()}"
        return None


@dataclass(frozen=True)
class Numbers:
    """A list of numbers, each :class:`Number` ``item``; ``count`` entries when given; ``ordered`` asks for
    non-decreasing values (a range written as [low, high])."""

    item: Number
    count: int = 0
    ordered: bool = False

    def problem(self, value: Any) -> str | None:
        values = list(value) if isinstance(value, (list, tuple)) else None
        if values is None or (self.count and len(values) != self.count):
            return f"{value!r} is not a list of {self.count or 'any number of'} values, each {self.item.describe()}"
        for v in values:
            bad = self.item.problem(v)
            if bad:
                return f"{value!r}: {bad}"
        if self.ordered and values != sorted(values):
            return f"{value!r} is not in increasing order (low, high)"
        return None


@dataclass(frozen=True)
class Choices:
    """A list of distinct entries, each one of ``values`` (e.g. TRAIN.LOGGERS)."""

    values: tuple

    def problem(self, value: Any) -> str | None:
        entries = list(value) if isinstance(value, (list, tuple)) else None
        if entries is None:
            return f"{value!r} is not a list of {', '.join(self.values)}"
        for entry in entries:
            if not isinstance(entry, str) or entry not in self.values:
                return f"{value!r}: {entry!r} is not one of {', '.join(self.values)}"
        if len(set(entries)) != len(entries):
            return f"{value!r} names an entry twice"
        return None


def _positive_int() -> Number:
    return Number(1, integer=True)


def _count() -> Number:
    return Number(0, integer=True)


def _fraction(open_high: bool = False) -> Number:
    return Number(0, 1, open_high=open_high)


#: The most classes a model may have: 100000 is 4.5x the largest label sets models are trained on (ImageNet-21k's
#: 21841 classes, JFT's ~18k) and a 0.8 GB classifier at 2048 features.
MAX_CLASSES = 100_000

RS_DEPTHS = (50, 101, 152, 200, 270, 350, 420)

#: key -> what it accepts. Keys missing from the config (an older defaults file) are skipped.
RULES: dict[str, Choice | Choices | Number | Numbers] = {
    # model
    # at most MAX_CLASSES: a checkpoint or config asking for 10^8 classes is a mistake, not a 200 GB head to allocate
    "MODEL.NUM_CLASSES": Number(0, MAX_CLASSES, integer=True),
    "MODEL.DROPOUT_RATE": _fraction(open_high=True),
    "MODEL.INIT.INFLATE": Choice(("mean", "center")),
    "MODEL.INIT.FREEZE_STAGES": Number(-1, integer=True),
    "MODEL.RESNET3D.DEPTH": Choice(RS_DEPTHS, unless="MODEL.RESNET3D.BLOCKS"),
    "MODEL.RESNET3D.BLOCKS": Numbers(_positive_int()),
    "MODEL.RESNET3D.WIDTH_MULTIPLIER": Number(0, open_low=True),
    "MODEL.RESNET3D.STEM_TYPE": Choice(("v1", "v0")),
    "MODEL.RESNET3D.STEM_WIDTH": _positive_int(),
    "MODEL.RESNET3D.STEM_TEMPORAL_KERNEL": _positive_int(),
    "MODEL.RESNET3D.STEM_TEMPORAL_STRIDE": _positive_int(),
    "MODEL.RESNET3D.STEM_POOL": Choice(("max", "conv")),
    "MODEL.RESNET3D.POOL_TEMPORAL_STRIDE": _positive_int(),
    "MODEL.RESNET3D.TEMPORAL_KERNELS": Numbers(_positive_int()),
    "MODEL.RESNET3D.TEMPORAL_STRIDES": Numbers(_positive_int()),
    "MODEL.RESNET3D.SPATIAL_STRIDES": Numbers(_positive_int()),
    "MODEL.RESNET3D.SE_RATIO": _fraction(),
    "MODEL.RESNET3D.SHORTCUT": Choice(("tf", "avg_down")),
    "MODEL.RESNET3D.DROP_PATH_RATE": _fraction(open_high=True),
    "MODEL.RESNET3D.PADDING": Choice(("torch", "tf_same")),
    "MODEL.RESNET3D.BN_EPS": Number(0, open_low=True),
    "MODEL.RESNET3D.BN_MOMENTUM": _fraction(),
    "MODEL.RESNET3D.CONV_IMPL": Choice(("conv3d", "lowered", "auto")),
    # data
    "DATA.NUM_FRAMES": _positive_int(),
    "DATA.SAMPLING_RATE": _positive_int(),
    "DATA.TRAIN_CROP_SIZE": _positive_int(),
    "DATA.TEST_CROP_SIZE": _positive_int(),
    "DATA.INPUT_CHANNEL_NUM": _positive_int(),
    "DATA.FOLDER_VAL_FRACTION": _fraction(open_high=True),
    "DATA.MISSING_FILES": Choice(("error", "drop")),
    # DATA.DECODING_BACKEND / FALLBACK_BACKEND: registered names, checked by rs3d.data.build.backends
    "DATA.MAX_DECODE_RETRIES": _count(),
    "DATA.TARGET_FPS": Number(0),
    "DATA.SHORT_VIDEO": Choice(("loop", "pad")),
    "DATA.TRAIN_CROP_MODE": Choice(("rrc", "jitter")),
    "DATA.TRAIN_CROP_AREA": Numbers(Number(0, 1, open_low=True), count=2, ordered=True),
    "DATA.TRAIN_CROP_ASPECT": Numbers(Number(0, open_low=True), count=2, ordered=True),
    "DATA.TRAIN_JITTER_SCALES": Numbers(_positive_int(), count=2, ordered=True),
    "DATA.FLIP_PROB": _fraction(),
    "DATA.RANDAUGMENT_LAYERS": _count(),
    "DATA.RANDAUGMENT_MAGNITUDE": Number(0),
    "DATA.RANDAUGMENT_POLICY": Choice(("tf", "tf_reflect", "torchvision")),
    "DATA.CLIPS_PER_VIDEO": _positive_int(),
    "DATA.NORMALIZATION": Choice(("mean_std", "unit")),
    "DATA.MEAN": Numbers(_fraction(), count=3),
    "DATA.STD": Numbers(Number(0, open_low=True), count=3),
    # loader
    "DATA_LOADER.NUM_WORKERS": Number(0, integer=True, auto=True),
    "DATA_LOADER.PREFETCH_FACTOR": _positive_int(),
    # solver
    "SOLVER.BASE_LR": Number(0, open_low=True),
    "SOLVER.REFERENCE_BATCH_SIZE": _positive_int(),
    "SOLVER.MOMENTUM": _fraction(open_high=True),
    "SOLVER.WEIGHT_DECAY": Number(0),
    "SOLVER.MAX_EPOCH": _positive_int(),
    "SOLVER.WARMUP_EPOCHS": Number(0),
    "SOLVER.LABEL_SMOOTHING": _fraction(open_high=True),
    "SOLVER.EMA_DECAY": _fraction(open_high=True),
    "SOLVER.GRAD_CLIP_NORM": Number(0),
    "SOLVER.ACCUMULATION_STEPS": _positive_int(),
    # train / test
    "TRAIN.BATCH_SIZE": _positive_int(),
    "TRAIN.EVAL_PERIOD": _count(),
    "TRAIN.CHECKPOINT_PERIOD": _count(),
    "TRAIN.CHECKPOINT_PERIOD_ITERS": _count(),
    "TRAIN.KEEP_CHECKPOINTS": _positive_int(),
    "TRAIN.MIXED_PRECISION": Choice(("auto", "bf16", "fp16", "off")),
    "TRAIN.COMPILE_SCOPE": Choice(("regional", "whole")),
    "TRAIN.PRECISE_BN_BATCHES": _positive_int(),
    "TRAIN.LOG_PERIOD": _positive_int(),
    "TRAIN.LOGGERS": Choices(("tensorboard", "wandb")),  # rs3d.engine.hooks.trackers.TRACKERS
    "TRAIN.DEVICE": Choice(("auto", "cuda", "cpu")),
    "TRAIN.DIST_TIMEOUT_MINUTES": Number(0, open_low=True),
    "TEST.BATCH_SIZE": _positive_int(),
    "TEST.NUM_ENSEMBLE_VIEWS": _positive_int(),
    "TEST.NUM_SPATIAL_CROPS": Choice((1, 3)),
    "TEST.VIEW_AGGREGATION": Choice(("softmax_mean", "logit_mean", "max")),
    "TEST.SPLIT": Choice(("test", "val")),
}


def lookup(cfg: CfgNode, key: str) -> tuple[bool, Any]:
    """(found, value) of a dotted key."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            return False, None
        node = node[part]
    return True, node


def accepts_auto(key: str) -> bool:
    """Whether ``key`` takes "auto" besides a number (its type is then checked here, not by its default's type)."""
    rule = RULES.get(key)
    return isinstance(rule, Number) and rule.auto


def check_value(key: str, value: Any, source: str = "", cfg: CfgNode | None = None) -> None:
    """Raise :class:`ConfigError` when ``value`` is not allowed for ``key`` (keys without a rule pass). A rule that
    depends on another key (``unless``) is checked only with the whole config ``cfg``."""
    rule = RULES.get(key)
    if rule is None:
        return
    if isinstance(rule, Choice) and rule.unless and (cfg is None or lookup(cfg, rule.unless)[1]):
        return
    bad = rule.problem(value)
    if bad:
        raise ConfigError(f"{source + ': ' if source else ''}{key}: {bad}")


def check_config(cfg: CfgNode, source: str = "config", keys: Iterable[str] | None = None) -> None:
    """Check every key of :data:`RULES` present in ``cfg``, then the rules that tie keys together."""
    for key in RULES if keys is None else keys:
        found, value = lookup(cfg, key)
        if found:
            check_value(key, value, source, cfg)
    d = cfg.DATA
    if d.RANDAUGMENT_POLICY == "torchvision" and d.RANDAUGMENT_MAGNITUDE > 30:
        raise ConfigError(f"{source}: DATA.RANDAUGMENT_MAGNITUDE: {d.RANDAUGMENT_MAGNITUDE!r} is not a bin 0-30, "
                          "which DATA.RANDAUGMENT_POLICY torchvision needs")
