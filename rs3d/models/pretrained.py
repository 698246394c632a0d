"""Initial weights for a freshly built model (``MODEL.INIT``): timm's ImageNet ResNet-RS inflated to 3D, any rs3d /
PySlowFast / pytorchvideo checkpoint, or a pytorchvideo baseline's published Kinetics weights.

What transfers from timm's 2D ResNet-RS (``timm:resnetrs50`` ...) into a 3D model:

====================================  =====================================  =====================================
part                                  timm layout (``STEM_POOL conv``,       TF 3D RS layout (the Kinetics configs:
                                      ``SHORTCUT avg_down``, no self-gating) max-pool stem, strided shortcuts, SG)
====================================  =====================================  =====================================
stem convs and BNs                    inflated                               inflated
stem pool (timm: strided conv + BN)   inflated                               unused (a max-pool has no weights)
bottleneck convs, BNs, SE             inflated / loaded                      inflated / loaded
downsampling shortcut conv + BN       loaded (same avg-pool, then 1x1x1)     loaded into the strided 1x1x1 conv
                                                                             (timm averages 2x2 before it; TF
                                                                             samples one pixel in four)
self-gating                           (not in this layout)                   left random (no 2D counterpart)
classifier                            re-initialised (1000 ImageNet classes) re-initialised
====================================  =====================================  =====================================

So ``resnet_rs_2d_equivalent`` / ``configs/finetune/rs3d_50_imagenet.yaml`` take every timm weight; the TF layout
takes all but the stem pool. Every start is logged as loaded / inflated / re-initialised / left random / unused.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from rs3d.checkpoint.formats import load_weights_file
from rs3d.checkpoint.hub import is_pretrained_source
from rs3d.checkpoint.io import CheckpointError
from rs3d.checkpoint.weights import exported_state
from rs3d.config.loader import ConfigError
from rs3d.models.inflate import inflate_tensor, timm_to_rs3d_key
from rs3d.utils import paths

logger = logging.getLogger(__name__)

INFLATE_METHODS = ("mean", "center")
TIMM_PREFIX = "timm:"
PYTORCHVIDEO = "pytorchvideo"


@dataclass
class InitReport:
    """What an initialisation did with every tensor of the model (names in the model's state dict) and of the
    source (``unused``: source tensors with no place in the model)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    left_random: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def part(label: str, names: list[str], show: int = 6) -> str:
            names = [n for n in names if not n.endswith("num_batches_tracked")]
            if not names:
                return f"{label} 0"
            more = f", ... {len(names) - show} more" if len(names) > show else ""
            return f"{label} {len(names)} ({', '.join(names[:show])}{more})"

        return (f"init from {self.source}: loaded {len([n for n in self.loaded if 'num_batches' not in n])}, "
                + "; ".join([part("inflated 2D->3D", self.inflated), part("re-initialised", self.reinitialised),
                             part("left random", self.left_random), part("unused from the source", self.unused)]))


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of the classifier: ``fc.`` (rs3d ResNet3D) or the last pytorchvideo block's ``proj``."""
    names = [n for n, _ in model.named_parameters()]
    if any(n.startswith("fc.") for n in names):
        return ("fc.",)
    blocks = getattr(model, "blocks", None)
    if blocks is not None and hasattr(blocks[-1], "proj"):
        return (f"blocks.{len(blocks) - 1}.proj.",)
    return ()


def is_timm_resnet_state(state: dict) -> bool:
    """True for a 2D timm ResNet(-RS) state dict (``conv1.*``, ``layer1.*`` with 4D kernels)."""
    return any(k.startswith("layer1.") for k in state) and any(
        k.startswith("conv1") and getattr(v, "ndim", 0) == 4 for k, v in state.items())


def timm_state_dict(name: str, file: str = "") -> dict[str, torch.Tensor]:
    """timm's pretrained weights of ``name`` (``resnetrs50``) through ``timm.create_model(pretrained=True)``: its
    download and cache, or a local ``file`` through timm's own ``pretrained_cfg_overlay=dict(file=...)``."""
    try:
        import timm
    except ImportError:
        raise ConfigError(f"MODEL.INIT.FROM timm:{name}: needs timm (pip install timm)") from None
    if file and not paths.isfile(file):
        raise ConfigError(f"MODEL.INIT.FILE: {file} not found")
    try:
        overlay = dict(file=paths.local_copy(file)) if file else None  # timm opens the file by name itself
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay)
    except Exception as exc:  # unknown names (RuntimeError), failed downloads (hub / OS errors), mismatched files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        hint = "" if file else " (offline? give the weights file with MODEL.INIT.FILE)"
        raise ConfigError(f"MODEL.INIT.FROM timm:{name}: {type(exc).__name__}: {first}{hint}") from None
    return model.state_dict()


def init_from_2d(model: nn.Module, state_2d: dict[str, torch.Tensor], method: str, source: str,
                 reset_head: bool = False) -> InitReport:
    """Load a 2D timm ResNet-RS state dict into an rs3d ResNet3D, inflating kernels; report every tensor."""
    if method not in INFLATE_METHODS:
        raise ConfigError(f"MODEL.INIT.INFLATE: {method!r} is not one of {', '.join(INFLATE_METHODS)}")
    if not hasattr(model, "stem"):
        raise ConfigError(f"{source}: 2D ResNet-RS weights inflate into MODEL.ARCH resnet3d only")
    target = model.state_dict()
    heads = head_prefixes(model) if reset_head else ()
    report = InitReport(source)
    new_state = {}
    for key, value in state_2d.items():
        name = timm_to_rs3d_key(key)
        if name is None or name not in target:
            report.unused.append(key)
            continue
        if name.startswith(heads) and heads:
            report.reinitialised.append(name)
            continue
        try:
            new_state[name] = inflate_tensor(value, target[name].shape, method).to(target[name].dtype)
        except ValueError:
            report.reinitialised.append(name)
            continue
        (report.inflated if value.shape != target[name].shape else report.loaded).append(name)
    report.left_random = [k for k in target if k not in new_state and k not in report.reinitialised]
    model.load_state_dict(new_state, strict=False)
    return report


def init_from_state(model: nn.Module, state: dict[str, torch.Tensor], source: str,
                    reset_head: bool = False) -> InitReport:
    """Load a 3D state dict of this architecture; tensors of another shape (a new head) stay freshly initialised."""
    target = model.state_dict()
    heads = head_prefixes(model) if reset_head else ()
    report = InitReport(source)
    keep = {}
    for key, value in state.items():
        if key not in target:
            report.unused.append(key)
        elif value.shape != target[key].shape or (heads and key.startswith(heads)):
            report.reinitialised.append(key)
        else:
            keep[key] = value
            report.loaded.append(key)
    report.left_random = [k for k in target if k not in keep and k not in report.reinitialised]
    if [k for k in report.left_random if not k.endswith("num_batches_tracked")] or report.unused:
        raise CheckpointError(f"{source}: does not fit this architecture (missing {report.left_random[:4]}, "
                              f"unexpected {report.unused[:4]}); is it a checkpoint of MODEL.ARCH?")
    model.load_state_dict(keep, strict=False)
    return report


# PySlowFast's Caffe2 blob names -> its PyTorch names (the single-pathway ResNets: Slow, C2D, I3D), in order, as
# PySlowFast's c2_model_loading.get_name_convert_func does.
_CAFFE2_TO_SLOWFAST: tuple[tuple[str, str], ...] = (
    (r"^res_conv1_bn_(.*)", r"s1.pathway0_stem.bn.\1"),
    (r"^conv1_(.*)", r"s1.pathway0_stem.conv.\1"),
    (r"^res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)", r"s\1.pathway0_res\2.branch\3.\4_\5"),
    (r"^res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)", r"s\1.pathway0_res\2.branch\3_\4"),
    (r"(.*)pred_(.*)", r"\1head.projection.\2"),
)
_CAFFE2_SUFFIXES: tuple[tuple[str, str], ...] = (
    (r"(.*)bn.b\Z", r"\1bn.bias"), (r"(.*)bn.s\Z", r"\1bn.weight"), (r"(.*)bn.rm\Z", r"\1bn.running_mean"),
    (r"(.*)bn.riv\Z", r"\1bn.running_var"), (r"(.*)[\._]b\Z", r"\1.bias"), (r"(.*)[\._]w\Z", r"\1.weight"),
)


def caffe2_to_slowfast_name(name: str) -> str:
    """``res2_0_branch2a_bn_s`` -> ``s2.pathway0_res0.branch2.a_bn.weight`` (PySlowFast's PyTorch naming)."""
    for rules in (_CAFFE2_TO_SLOWFAST, _CAFFE2_SUFFIXES):
        for pattern, repl in rules:
            name, count = re.subn(pattern, repl, name)
            if count:
                break
    return name


def slowfast_to_pytorchvideo(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """PySlowFast ResNet names (``s2.pathway0_res0.branch2.a_bn.weight``) -> the pytorchvideo model's
    (``blocks.1.res_blocks.0.branch2.norm_a.weight``); stage k is the model's (k-1)-th ResStage block."""
    blocks = list(getattr(model, "blocks", []))
    stages = [i for i, b in enumerate(blocks) if type(b).__name__ == "ResStage"]
    out = {}
    for key, value in state.items():
        new = key
        m = re.match(r"^s1\.pathway0_stem\.(conv|bn)\.(.*)", key)
        if m:
            new = f"blocks.0.{'conv' if m[1] == 'conv' else 'norm'}.{m[2]}"
        m = re.match(r"^s([0-9]+)\.pathway0_res([0-9]+)\.branch(1|2)(?:\.([abc]))?(_bn)?\.(.*)", key)
        if m and 0 <= int(m[1]) - 2 < len(stages):
            where = f"blocks.{stages[int(m[1]) - 2]}.res_blocks.{m[2]}."
            if m[3] == "1":
                new = where + ("branch1_norm." if m[5] else "branch1_conv.") + m[6]
            elif m[4]:
                new = where + f"branch2.{'norm' if m[5] else 'conv'}_{m[4]}." + m[6]
        m = re.match(r"^head\.projection\.(.*)", key)
        if m and blocks:
            new = f"blocks.{len(blocks) - 1}.proj.{m[1]}"
        out[new] = value
    return out


def init_from_checkpoint(model: nn.Module, path: str, method: str = "mean", reset_head: bool = False) -> InitReport:
    """Any supported file (``rs3d.checkpoint.formats``): rs3d, PySlowFast / pytorchvideo ``.pyth``, PySlowFast's
    Caffe2 ``.pkl`` (Slow / C2D / I3D into the pytorchvideo baselines), a bare state dict, or a timm 2D ResNet-RS
    state dict saved with ``torch.save`` (inflated)."""
    state = exported_state(load_weights_file(path))
    if is_timm_resnet_state(state):
        return init_from_2d(model, state, method, path, reset_head)
    if "conv1_w" in state or "res_conv1_bn_s" in state:  # Caffe2 blob names
        state = {caffe2_to_slowfast_name(k): v for k, v in state.items()
                 if k not in ("lr", "model_iter") and not k.endswith("_momentum")}
    if any(k.startswith("s1.pathway0_stem.") for k in state):  # PySlowFast's PyTorch names
        state = slowfast_to_pytorchvideo(state, model)
    return init_from_state(model, state, path, reset_head)


def pytorchvideo_weights_url(arch: str) -> str:
    """The published Kinetics-400 weights of a pytorchvideo baseline (pytorchvideo's own hub table)."""
    from rs3d.models.baselines import published_weights

    urls = published_weights()
    if arch not in urls:
        raise ConfigError(f"MODEL.INIT.FROM pytorchvideo: MODEL.ARCH {arch} has no published weights "
                          f"(those that do: {', '.join(sorted(urls))})")
    return urls[arch]


def download_cached(url: str) -> str:
    """Download ``url`` once into torch.hub's checkpoint cache (``$TORCH_HOME/hub/checkpoints``); return the file."""
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    path = os.path.join(folder, os.path.basename(url))
    if not os.path.isfile(path):  # torch.hub's own cache: a local folder by definition
        os.makedirs(folder, exist_ok=True)  # torch.hub downloads into a local file only
        logger.info("downloading %s to %s", url, path)
        try:
            torch.hub.download_url_to_file(url, path, progress=True)
        except OSError as exc:
            raise CheckpointError(f"{url}: download failed ({exc}); put the file at {path}") from None
    return path


def apply_init(model: nn.Module, source: str, arch: str, file: str = "", inflate: str = "mean",
               reset_head: bool = False) -> InitReport | None:
    """Initialise ``model`` from ``source`` (the value of ``MODEL.INIT.FROM``) and log what happened to each tensor."""
    if not source:
        return None
    if inflate not in INFLATE_METHODS:
        raise ConfigError(f"MODEL.INIT.INFLATE: {inflate!r} is not one of {', '.join(INFLATE_METHODS)}")
    if source.startswith(TIMM_PREFIX):
        name = source[len(TIMM_PREFIX):]
        report = init_from_2d(model, timm_state_dict(name, file), inflate, source, reset_head)
    elif source == PYTORCHVIDEO or source.startswith(PYTORCHVIDEO + ":"):
        wanted = source.partition(":")[2] or arch
        if wanted != arch:
            raise ConfigError(f"MODEL.INIT.FROM {source}: weights of {wanted} do not fit MODEL.ARCH {arch}")
        path = file or download_cached(pytorchvideo_weights_url(arch))
        report = init_from_checkpoint(model, path, inflate, reset_head)
        report.source = f"{source} ({path})"
    else:
        if not paths.isfile(source) and not is_pretrained_source(source):
            raise ConfigError(f"MODEL.INIT.FROM: {source} is not a file, a pretrained folder, 'hf-hub:<org/name>', "
                              "'timm:<name>' or 'pytorchvideo'")
        report = init_from_checkpoint(model, source, inflate, reset_head)
    logger.info("%s", report.summary())
    return report
