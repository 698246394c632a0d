"""The architecture registry: a model registers itself next to its definition (``@register_model``, as timm does)
and ``MODEL.ARCH`` names it; :mod:`rs3d.models.factory` turns a config into the registered function's arguments.

A registered function takes plain keyword arguments and returns an ``nn.Module``. It receives those of the common
arguments its signature names (``num_classes``: MODEL.NUM_CLASSES, ``in_channels``: DATA.INPUT_CHANNEL_NUM,
``num_frames``: DATA.NUM_FRAMES, ``crop_size``: DATA.TRAIN_CROP_SIZE, ``dropout_rate``: MODEL.DROPOUT_RATE),
plus every key of its config ``section`` in lower case (``MODEL.RESNET3D.DEPTH`` -> ``depth=``), which are also
``create_model``'s keywords. A bad argument is a ``ValueError`` (a :class:`ModelArgumentError` names which), which
the factory reports as a config error naming the key.
Variants are separate registrations (``x3d_s``, ``x3d_m``), as in timm.

The backbone contract: what the rest of rs3d relies on, checked for every registered model by
:func:`check_backbone` (and the test over the registry):

1. ``model(x)`` maps float clips ``(N, in_channels, T, H, W)`` to logits ``(N, num_classes)``, in train and eval
   mode, at the configured clip length and crop (and at larger test crops): training, testing, prediction, export
   and the model table (parameters, fvcore GFLOPs per view) use nothing else.
2. Stages for ``MODEL.INIT.FREEZE_STAGES``: attributes ``stem`` and ``stages`` (a sequence of stages), or
   ``blocks`` whose first entry is the stem and last the head (pytorchvideo's layout).
3. A classifier the fine-tuning code can find (``MODEL.INIT.RESET_HEAD``, another class count): parameters under
   ``fc.`` or under ``blocks.<last>.proj.``.
4. Optional: ``compile_regions()`` listing the stem and blocks compiled one by one by ``TRAIN.COMPILE_SCOPE
   regional`` (else the whole model is compiled); inflation of 2D timm ResNet-RS weights (``MODEL.INIT.FROM
   timm:...``) needs rs3d's own names (``stem.conv1``, ``stages.<i>.<j>.``, ``fc.``) and is refused otherwise.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

#: Keyword -> where the factory takes it from; a registered function gets those its signature names.
COMMON_ARGUMENTS = {
    "num_classes": "MODEL.NUM_CLASSES",
    "in_channels": "DATA.INPUT_CHANNEL_NUM",
    "num_frames": "DATA.NUM_FRAMES",
    "crop_size": "DATA.TRAIN_CROP_SIZE",
    "dropout_rate": "MODEL.DROPOUT_RATE",
}

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ArchEntry:
    """A registered architecture: its ``MODEL.ARCH`` name, the function that builds it, the config section whose
    keys are its own arguments ("" for none) and the module that registered it."""

    name: str
    fn: Callable[..., nn.Module]
    section: str = ""
    module: str = ""

    def accepts(self, keyword: str, named: bool = False) -> bool:
        """Whether the function takes ``keyword``: named in its signature, or (unless ``named``) through
        ``**kwargs``."""
        parameters = inspect.signature(self.fn).parameters
        return keyword in parameters or (not named and any(p.kind is p.VAR_KEYWORD for p in parameters.values()))


class ModelArgumentError(ValueError):
    """A bad value of one argument of a registered function; the factory names its config key."""

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument


_ARCHS: dict[str, ArchEntry] = {}


def register_model(name: str | Callable[..., nn.Module] | None = None, *, section: str = ""):
    """Register a model function under ``MODEL.ARCH == name`` (default: the function's name), with the config
    ``section`` whose keys it takes. Use as ``@register_model``, ``@register_model("x3d_m")`` or
    ``register_model("x3d_m")(fn)``. A name taken by another function is a ``ValueError``."""
    if callable(name):
        return register_model(section=section)(name)

    def wrap(fn: Builder) -> Builder:
        arch = name or fn.__name__
        entry = ArchEntry(arch, fn, section, getattr(fn, "__module__", "") or "")
        old = _ARCHS.get(arch)
        if old is not None and _origin(old.fn) != _origin(fn):  # the same function again (a re-import) is fine
            raise ValueError(f"MODEL.ARCH {arch!r} is already registered by {old.module}")
        _ARCHS[arch] = entry
        return fn
    return wrap


#: The name rs3d used before the registry moved here.
register = register_model


def available_archs() -> list[str]:
    """Names accepted by ``MODEL.ARCH``, sorted."""
    return sorted(_ARCHS)


def arch_entry(name: str) -> ArchEntry:
    """The registration of ``name``; a ``KeyError`` naming the known architectures when there is none."""
    if name not in _ARCHS:
        raise KeyError(f"unknown architecture {name!r}; choose one of {', '.join(available_archs())}")
    return _ARCHS[name]


def check_backbone(model: nn.Module, num_classes: int, clip: tuple[int, int, int, int] = (3, 8, 64, 64),
                   test_crop: int = 0) -> None:
    """Raise ``ValueError`` naming the first broken clause of the backbone contract (module docstring): the output
    shape on a ``(2, *clip)`` batch in train and eval mode (and at ``test_crop``), stages and head."""
    from rs3d.models.freeze import early_modules
    from rs3d.models.pretrained import head_prefixes

    name = type(model).__name__
    x = torch.randn(2, *clip)
    crops = [clip[-1]] + ([test_crop] if test_crop and test_crop != clip[-1] else [])
    for training in (True, False):
        model.train(training)
        for crop in crops[:1] if training else crops:  # a larger test crop is an evaluation input
            with torch.no_grad():
                out = model(x if crop == clip[-1] else torch.randn(2, *clip[:2], crop, crop))
            if tuple(out.shape) != (2, num_classes):
                mode = "train" if training else "eval"
                raise ValueError(f"{name}: (2, {clip[0]}, {clip[1]}, {crop}, {crop}) gives {tuple(out.shape)} in "
                                 f"{mode} mode, not (2, {num_classes}) logits")
    try:
        early_modules(model, 0)
    except ValueError as e:
        raise ValueError(f"{name}: no stages to freeze ({e}); give it stem + stages or blocks") from None
    if not head_prefixes(model):
        raise ValueError(f"{name}: no classifier under fc. or blocks.<last>.proj.")
    regions = getattr(model, "compile_regions", None)
    if regions is not None and not all(isinstance(m, nn.Module) for m in regions()):
        raise ValueError(f"{name}: compile_regions() must list modules")


#: Names this module held before the registry moved here; they live in :mod:`rs3d.models.factory` now.
_MOVED_TO_FACTORY = ("create_model", "get_config", "list_models", "keyword_to_key", "default_pretrained_source",
                     "pretrained_folder_config")


def __getattr__(name: str) -> Any:
    """``from rs3d.models.registry import create_model`` keeps working (imported lazily: the factory imports this)."""
    if name in _MOVED_TO_FACTORY:
        from rs3d.models import factory

        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _origin(fn: Any) -> tuple[str, str]:
    return getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn))
