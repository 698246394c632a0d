"""Padding conventions of the 3D models: PyTorch's symmetric ``k // 2`` or TensorFlow's SAME (for TF parity)."""

from __future__ import annotations

from typing import Literal

Padding = Literal["torch", "tf_same"]
Int3 = tuple[int, int, int]


def triple(value: int | tuple[int, ...]) -> Int3:
    """Expand an int to (t, h, w); pass a 3-tuple through."""
    if isinstance(value, int):
        return (value, value, value)
    if len(value) != 3:
        raise ValueError(f"expected an int or 3 values, got {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


def same_padding(size: tuple[int, ...], kernel: Int3, stride: Int3) -> list[int]:
    """TensorFlow SAME padding for the last three dims, in ``F.pad`` order (w_before, w_after, h..., t...).

    Per dim: out = ceil(n / s), total = max((out - 1) * s + k - n, 0), before = total // 2, after = the rest.
    """
    pads: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride))):
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


def check_padding(padding: str) -> str:
    """``padding`` if it is "torch" or "tf_same"; a ValueError naming the choices otherwise."""
    if padding not in ("torch", "tf_same"):
        raise ValueError(f"padding must be 'torch' or 'tf_same', got {padding!r}")
    return padding
