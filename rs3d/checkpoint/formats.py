"""Published weight files, read without running pickled code.

- rs3d checkpoints, PySlowFast and pytorchvideo ``.pyth`` files (``{"model_state": ..., "epoch": ..., "cfg": ...}``)
  and bare state dicts: ``torch.load(weights_only=True)`` with only the NumPy types that PySlowFast-era files can
  hold besides tensors allow-listed (:data:`PYSLOWFAST_SAFE_GLOBALS`: NumPy scalars and arrays, e.g. an ``epoch``
  or a learning rate saved as ``np.float64``).
- PySlowFast's Caffe2 ``.pkl`` files (a plain pickle of ``{"blobs": {name: ndarray}}``, Python 2 era): a
  restricted unpickler that admits NumPy's array and scalar reconstruction and nothing else.

Anything else in a file (a class, a function) is refused with a one-line :class:`CheckpointError`.
"""
from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import torch

from rs3d.checkpoint.hub import is_pretrained_source
from rs3d.checkpoint.io import CheckpointError, check_kind, load_checkpoint
from rs3d.utils import paths

#: (module, name) pairs a Caffe2 ``.pkl`` may reference: NumPy arrays, dtypes and scalars (NumPy 1 and 2 names).
_NUMPY_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"), ("_codecs", "encode")}


def _numpy_safe_globals() -> list[Any]:
    """The NumPy objects a PySlowFast-era ``.pyth`` may pickle besides tensors (scalars such as an ``epoch`` saved
    as ``np.int64``, small arrays): array and scalar reconstruction, ``ndarray``, ``dtype`` and the dtype classes
    of the numeric types."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [type(np.dtype(t)) for t in ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32",
                                          "float64")]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtypes]


PYSLOWFAST_SAFE_GLOBALS = _numpy_safe_globals()


def load_weights_file(path: str) -> dict:
    """Read any supported checkpoint file into a dict (its state dict is found by ``exported_state``)."""
    if not paths.isfile(path) and not is_pretrained_source(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.endswith(".pkl"):
        return {"model_state": caffe2_blobs(path)}
    return load_checkpoint(path, "cpu", PYSLOWFAST_SAFE_GLOBALS, "NumPy scalars")


class _Caffe2Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a Caffe2 weights file")


def caffe2_blobs(path: str) -> dict[str, torch.Tensor]:
    """The weights of a PySlowFast Caffe2 ``.pkl`` (``{"blobs": {name: ndarray}}``) as tensors, Caffe2 names kept,
    optimiser blobs (``*_momentum``) and non-array entries dropped. Loaded with a restricted unpickler."""
    check_kind(path)
    try:
        with paths.open_file(path, "rb") as f:
            data = _Caffe2Unpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused: {exc}") from None
    except (EOFError, OSError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{path}: not a readable Caffe2 weights file ({exc})") from None
    blobs = data.get("blobs", data) if isinstance(data, dict) else None
    if not isinstance(blobs, dict):
        raise CheckpointError(f"{path}: expected a pickled dict of arrays (Caffe2 'blobs'), got {type(data).__name__}")
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in blobs.items()
            if isinstance(value, np.ndarray) and not name.endswith("_momentum")}
