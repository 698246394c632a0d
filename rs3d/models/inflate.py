"""Start a 3D ResNet-RS from 2D ImageNet ResNet-RS weights (timm ``resnetrs*`` layout) by kernel inflation.

"mean" repeats a 2D kernel over the kt taps and divides by kt (I3D); "center" puts it on the middle tap, so
a clip of identical frames gives exactly the 2D network's output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, NamedTuple

import torch
from torch import nn

Method = Literal["mean", "center"]

# timm ResNet-RS name -> rs3d ResNet3D name (regex, replacement), applied in order, first match wins.
_TIMM_TO_RS3D: tuple[tuple[str, str], ...] = (
    (r"^conv1\.0\.", "stem.conv1."),
    (r"^conv1\.1\.", "stem.bn1."),
    (r"^conv1\.3\.", "stem.conv2."),
    (r"^conv1\.4\.", "stem.bn2."),
    (r"^conv1\.6\.", "stem.conv3."),
    (r"^bn1\.", "stem.bn3."),
    (r"^maxpool\.0\.", "stem.pool.conv."),
    (r"^maxpool\.1\.", "stem.pool.bn."),
    (r"^layer(\d)\.(\d+)\.downsample\.1\.", lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.shortcut.conv."),
    (r"^layer(\d)\.(\d+)\.downsample\.2\.", lambda m: f"stages.{int(m[1]) - 1}.{m[2]}.shortcut.bn."),
    (r"^layer(\d)\.(\d+)\.", lambda m: f"stages.{int(m[1]) - 1}.{m[2]}."),
    (r"^fc\.", "fc."),
)


class InflationReport(NamedTuple):
    """What ``inflate_2d_weights`` did not load: target keys left as they were, source keys unused,
    and keys skipped because their shapes disagree beyond inflation (e.g. a 1000-class head)."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]


def timm_to_rs3d_key(key: str) -> str | None:
    """Map a timm ResNet-RS state-dict key to the rs3d ResNet3D key, or None when it has no counterpart."""
    for pattern, repl in _TIMM_TO_RS3D:
        new, count = re.subn(pattern, repl, key)
        if count:
            return new
    return None


def inflate_tensor(weight: torch.Tensor, target_shape: torch.Size, method: Method) -> torch.Tensor:
    """Turn a 2D conv kernel (O, I, kh, kw) into (O, I, kt, kh, kw); other tensors must already match."""
    if weight.shape == target_shape:
        return weight.clone()
    if weight.ndim == 4 and len(target_shape) == 5 and weight.shape == target_shape[:2] + target_shape[3:]:
        kt = target_shape[2]
        if method == "mean":
            return weight.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        if method == "center":
            out = weight.new_zeros(target_shape)
            out[:, :, kt // 2] = weight
            return out
        raise ValueError(f"inflation method must be 'mean' or 'center', got {method!r}")
    raise ValueError(f"cannot inflate {tuple(weight.shape)} to {tuple(target_shape)}")


def inflate_2d_weights(
    model: nn.Module,
    state_dict_2d: Mapping[str, torch.Tensor],
    method: Method = "mean",
    strict: bool = False,
) -> InflationReport:
    """Load a timm ResNet-RS state dict into an rs3d ``ResNet3D``, inflating 2D kernels to the model's kt.

    Parts with no 2D counterpart (self-gating, a max-pool stem) stay as initialised; a classifier with another
    class count is skipped. With ``strict=True`` any of these is an error instead.
    """
    if method not in ("mean", "center"):
        raise ValueError(f"inflation method must be 'mean' or 'center', got {method!r}")
    target = model.state_dict()
    new_state: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for key, value in state_dict_2d.items():
        name = timm_to_rs3d_key(key)
        if name is None or name not in target:
            unexpected.append(key)
            continue
        try:
            new_state[name] = inflate_tensor(value, target[name].shape, method).to(target[name].dtype)
        except ValueError:
            mismatched.append(key)
    missing = [k for k in target if k not in new_state]
    report = InflationReport(missing, unexpected, mismatched)
    if strict and (missing or unexpected or mismatched):
        raise ValueError(
            f"inflation is not exact: {len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}), {len(mismatched)} mismatched (e.g. {mismatched[:3]})"
        )
    model.load_state_dict(new_state, strict=False)
    return report
