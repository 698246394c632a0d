"""Video decoding behind one small interface and a registry of backends: decord by default, PyAV as the fallback
and for what decord cannot do (rotated videos, skipping non-reference frames).

A reader is opened per sample inside the DataLoader worker (a decord reader created in the parent before the
workers fork hangs them). Only the requested frame indices are returned, already resized at decode time when an
output size is given, so full-resolution frames are never materialised in Python. Every backend raises
:class:`VideoDecodeError` for every kind of failure, so callers handle one exception type.

Layout: :mod:`~rs3d.data.decoders.base` (stream facts, error, reader interface), :mod:`~rs3d.data.decoders.probe`
(stream facts from the header), :mod:`~rs3d.data.decoders.registry` (``register_backend``, ``open_video``), one
module per backend (:mod:`~rs3d.data.decoders.decord_backend`, :mod:`~rs3d.data.decoders.pyav_backend`). Every
``*_backend`` module of this package is imported here, so a new backend is one new module and nothing else.
"""
import importlib
import pkgutil

from rs3d.data.decoders.base import VideoDecodeError, VideoInfo, VideoReader
from rs3d.data.decoders.decord_backend import DecordReader
from rs3d.data.decoders.probe import probe_video
from rs3d.data.decoders.pyav_backend import PyAVReader
from rs3d.data.decoders.registry import (
    Backend,
    Capabilities,
    available_backends,
    default_backends,
    get_backend,
    open_video,
    probe_with,
    quiet_backends,
    register_backend,
)

__all__ = [
    "Backend",
    "Capabilities",
    "DecordReader",
    "PyAVReader",
    "VideoDecodeError",
    "VideoInfo",
    "VideoReader",
    "available_backends",
    "default_backends",
    "get_backend",
    "open_video",
    "probe_video",
    "probe_with",
    "quiet_backends",
    "register_backend",
]

for _module in pkgutil.iter_modules(__path__):
    if _module.name.endswith("_backend"):
        importlib.import_module(f"{__name__}.{_module.name}")
