"""Load TF Model Garden 3D ResNet(-RS) weights into rs3d's ``ResNet3D`` (build it with ``padding="tf_same"``).

The arrays are named by layer role, the layout ``tests/fixtures/tf/make_tf_fixture.py`` exports from a Keras
``ResNet3D`` + ``VideoClassificationModel``: ``stem/conv{k}/kernel``, ``stem/bn{k}/{gamma,beta,mean,var}``,
``s{i}/b{j}/{temporal,spatial,expand,shortcut}_conv/kernel``, ``s{i}/b{j}/norm{0..3}/...``,
``s{i}/b{j}/se/{reduce,expand}/{kernel,bias}``, ``s{i}/b{j}/gate/{kernel,bias}``, ``head/{kernel,bias}``.
Keras kernels are channels-last (kt, kh, kw, cin, cout); they are transposed to PyTorch's (cout, cin, kt, kh, kw).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

_BN_FIELDS = {"gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}
_BLOCK_LAYERS = {
    "temporal_conv": "conv1", "spatial_conv": "conv2", "expand_conv": "conv3", "shortcut_conv": "shortcut.conv",
    "norm0": "shortcut.bn", "norm1": "bn1", "norm2": "bn2", "norm3": "bn3",
    "se/reduce": "se.fc1", "se/expand": "se.fc2", "gate": "gate.fc",
}


def tf_to_rs3d_key(key: str) -> str | None:
    """Map a TF role name (e.g. ``s2/b0/norm1/gamma``) to an rs3d state-dict key; None for non-weights."""
    field = key.rsplit("/", 1)[-1]
    suffix = _BN_FIELDS.get(field, "weight" if field == "kernel" else "bias" if field == "bias" else None)
    if suffix is None:
        return None
    if m := re.fullmatch(r"stem/(conv|bn)(\d)/\w+", key):
        return f"stem.{m[1]}{int(m[2]) + 1}.{suffix}"
    if m := re.fullmatch(r"s(\d+)/b(\d+)/(.+)/\w+", key):
        layer = _BLOCK_LAYERS.get(m[3])
        return f"stages.{m[1]}.{m[2]}.{layer}.{suffix}" if layer else None
    if re.fullmatch(r"head/\w+", key):
        return f"fc.{suffix}"
    return None


def _to_torch_layout(array: np.ndarray, target: torch.Tensor) -> torch.Tensor:
    tensor = torch.from_numpy(np.asarray(array, dtype=np.float32))
    if tensor.ndim >= 2 and target.ndim == 2:  # dense (cin, cout) -> (cout, cin)
        tensor = tensor.t()
    elif tensor.ndim >= 4:  # conv (..., cin, cout) -> (cout, cin, ...), 2D SE kernels gain a time axis
        tensor = tensor.permute(tensor.ndim - 1, tensor.ndim - 2, *range(tensor.ndim - 2))
        if tensor.numel() == target.numel():
            tensor = tensor.reshape(target.shape)
    if tensor.shape != target.shape:
        raise ValueError(f"shape {tuple(array.shape)} does not fit {tuple(target.shape)}")
    return tensor.to(target.dtype)


def load_tf_model_garden_weights(model: nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Copy every TF weight into ``model``; raise if one has no place or a model weight is left unset."""
    state = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for key, array in arrays.items():
        name = tf_to_rs3d_key(key)
        if name is None:
            continue
        if name not in state:
            raise ValueError(f"TF weight {key} maps to {name}, which this model does not have")
        try:
            loaded[name] = _to_torch_layout(array, state[name])
        except ValueError as e:
            raise ValueError(f"TF weight {key} -> {name}: {e}") from None
    missing = [k for k in state if k not in loaded and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{len(missing)} model weights have no TF counterpart, e.g. {missing[:3]}")
    model.load_state_dict(loaded, strict=False)
