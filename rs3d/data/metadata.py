"""Per-video stream facts saved by ``tools/check_dataset.py`` and read by the loaders, so workers skip the
per-video probe (a PyAV open plus one decoded frame, ~10 ms) on their first visit to each video.

An entry is used only while the file's size and modification time are unchanged. ``num_frames`` is the count
that decodes; ``declared_frames`` (what the header claims) is kept for reference when they differ. The metadata
file itself may be on any iopath handler; entries are kept for local videos only, since iopath cannot tell a
file's size or modification time, so a replaced video on another handler could not be told from the original
(those are probed on each worker's first visit, as without the file).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable

from rs3d.data.decoders import VideoInfo
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_open

FIELDS = ("num_frames", "fps", "height", "width", "rotation", "codec", "ref_step")


def metadata_path(data_dir: str, split: str) -> str:
    """Where the metadata of a split lives: ``DATA_DIR/<split>.meta.json``."""
    return os.path.join(data_dir, f"{split}.meta.json")


def save_metadata(path: str, checks: Iterable) -> int:
    """Write the facts of every readable checked video (objects with ``path`` and :data:`FIELDS`); atomic."""
    entries = {}
    for check in checks:
        local = paths.is_local(check.path)
        if getattr(check, "readable", True) and check.num_frames > 0 and local and os.path.isfile(check.path):
            stat = os.stat(check.path)  # local only (see the module's note)
            entries[os.path.abspath(check.path)] = {**{f: getattr(check, f) for f in FIELDS},
                                                    "declared_frames": getattr(check, "declared_frames", 0),
                                                    "size": stat.st_size, "mtime": stat.st_mtime}
    with atomic_open(path) as f:
        json.dump(entries, f)
    return len(entries)


def load_metadata(path: str, videos: Iterable[str]) -> dict[str, VideoInfo]:
    """Stream facts for ``paths`` from a metadata file; stale or missing entries are left out (probed later)."""
    if not paths.isfile(path):
        return {}
    try:
        text = paths.read_text(path)
    except OSError:
        return {}  # a URL that is not there (iopath's HTTP handler cannot tell beforehand): probe every video
    entries = json.loads(text)
    infos = {}
    for video in videos:
        entry = entries.get(os.path.abspath(video)) if paths.is_local(video) else None
        if entry is None:
            continue
        try:
            stat = os.stat(video)  # a local video (entries of others were left out above)
        except OSError:
            continue
        if stat.st_size == entry["size"] and abs(stat.st_mtime - entry["mtime"]) < 1e-3:
            infos[video] = VideoInfo(**{f: entry[f] for f in FIELDS if f in entry})  # older files lack ref_step
    return infos
