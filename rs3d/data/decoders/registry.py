"""Decoding backends by name: each backend module registers its reader class with what it can do
(``@register_backend("pyav", Capabilities(...))``), and the datasets, the dataset checker and the check of
``DATA.DECODING_BACKEND`` (:func:`rs3d.data.build.backends`) ask here instead of naming decord or PyAV. Adding a backend is one new module that registers itself (imported
by this package, or by the user through the config's ``CUSTOM_IMPORTS``).

A reader class is called as ``cls(path, size, info)``: ``size`` (H, W) as displayed resizes every frame at
decode time (None: stored size), ``info`` (:class:`~rs3d.data.decoders.base.VideoInfo`) spares a probe. It has
``info`` and ``get_frames(indices) -> (N, H, W, 3) uint8 RGB`` (upright) and ``close()``, and raises
:class:`~rs3d.data.decoders.base.VideoDecodeError` for every failure.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rs3d.data.decoders.base import VideoInfo, VideoReader
from rs3d.data.decoders.probe import probe_video
from rs3d.utils import paths


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, which decides the videos it is given.

    Attributes:
        seek: reads frames at arbitrary indices without decoding from the start every time.
        skip_nonref: leaves unwanted non-reference frames undecoded (a prepared video's odd frames, ``ref_step`` 2).
        file_objects: reads videos off local disk through a file object (``rs3d.utils.paths``).
        rotation: returns rotated videos upright (applies the display matrix itself).
        device: where the decoded frames live (``"cpu"``; a GPU decoder would say ``"cuda"``).
    """

    seek: bool = True
    skip_nonref: bool = False
    file_objects: bool = False
    rotation: bool = False
    device: str = "cpu"


@dataclass(frozen=True)
class Backend:
    """A registered backend: its name, reader class, capabilities, order (higher first), a function that silences
    its native logging (for the checkers' worker processes), its own ``probe(path) -> VideoInfo`` where PyAV's
    container probe (:func:`~rs3d.data.decoders.probe.probe_video`) cannot read its files, and whether datasets and
    the checker try it when no backend is named (``default``; otherwise only ``DATA.DECODING_BACKEND`` names it)."""

    name: str
    reader: Callable[..., VideoReader]
    capabilities: Capabilities = field(default_factory=Capabilities)
    priority: int = 0
    quiet: Callable[[], None] | None = None
    probe: Callable[[str], VideoInfo] | None = None
    default: bool = False

    def suits(self, info: VideoInfo | None, local: bool = True) -> bool:
        """Whether this backend reads the video as it should: off local disk only if it takes file objects, upright,
        and skipping frames where the video allows it. Unknown facts (no ``info``) suit every backend."""
        if not local and not self.capabilities.file_objects:
            return False
        if info is None:
            return True
        return (self.capabilities.rotation or info.rotation == 0) and (
            self.capabilities.skip_nonref or info.ref_step == 1)


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, capabilities: Capabilities = Capabilities(), priority: int = 0,
                     quiet: Callable[[], None] | None = None, probe: Callable[[str], VideoInfo] | None = None,
                     default: bool = False):
    """Class decorator: register a reader class under ``name`` (a value of ``DATA.DECODING_BACKEND``). Backends are
    listed in decreasing ``priority`` (decord 20, PyAV 10); ``default`` ones are tried when none is named. A name
    taken by another class is a ``ValueError``."""
    def wrap(reader):
        old = _BACKENDS.get(name)
        if old is not None and _origin(old.reader) != _origin(reader):
            raise ValueError(f"decoding backend {name!r} is already registered by {old.reader.__module__}")
        _BACKENDS[name] = Backend(name, reader, capabilities, priority, quiet, probe, default)
        return reader
    return wrap


def available_backends() -> tuple[str, ...]:
    """Registered backend names, highest priority first (ties by name)."""
    return tuple(b.name for b in sorted(_BACKENDS.values(), key=lambda b: (-b.priority, b.name)))


def default_backends() -> tuple[str, ...]:
    """The backends a dataset and the checker try when none are named: the ``default`` ones, highest priority
    first (decord, then PyAV)."""
    return tuple(name for name in available_backends() if _BACKENDS[name].default)


def get_backend(name: str) -> Backend:
    """The registration of ``name``; ``ValueError`` naming the registered backends when there is none."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown decoding backend {name!r}; choose one of {', '.join(available_backends())}")
    return _BACKENDS[name]


def open_video(path: str, backend: str | None = None, size: tuple[int, int] | None = None,
               info: VideoInfo | None = None) -> VideoReader:
    """Open ``path`` with ``backend`` (default: the first default backend); ``size`` = (H, W) as displayed resizes
    every frame at decode time, ``info`` (from :func:`~rs3d.data.decoders.probe.probe_video`) saves a probe.

    A video the backend cannot read as it should (see :meth:`Backend.suits`: off local disk, rotated, or with
    skippable odd frames) goes to the highest-priority backend that can, so every backend returns the same frames.
    """
    local = paths.is_local(path)
    chosen = get_backend(backend or default_backends()[0])
    if not chosen.suits(info, local):
        chosen = next((b for b in map(get_backend, available_backends()) if b.suits(info, local)), chosen)
    return chosen.reader(path, size, info)


def probe_with(path: str, backends: Sequence[str] = ()) -> VideoInfo:
    """Stream facts of ``path``: the probe of the first of ``backends`` (default: all, in order) that has its own,
    else PyAV's container probe, which the built-in backends share."""
    for name in backends or default_backends():
        own = get_backend(name).probe
        if own is not None:
            return own(path)
    return probe_video(path)


def quiet_backends() -> None:
    """Silence the native logging of every registered backend: problems are reported in results instead."""
    for backend in _BACKENDS.values():
        if backend.quiet is not None:
            backend.quiet()


def _origin(reader) -> tuple[str, str]:
    return getattr(reader, "__module__", ""), getattr(reader, "__qualname__", repr(reader))
