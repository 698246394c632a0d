"""Kinetics-style clip data: annotations, decoding (decord / PyAV), sampling, augmentation, loaders."""

from rs3d.data.annotations import AnnotationError, VideoRecord, load_class_names
from rs3d.data.build import (
    ClipNormalizer,
    TrainInputs,
    build_dataset,
    build_loader,
    load_class_names_for,
    load_records,
)
from rs3d.data.dataset import (
    SkipTracker,
    TestClipDataset,
    TrainClipDataset,
    collate_clips,
)
from rs3d.data.decoders import VideoDecodeError, VideoInfo, open_video, probe_video
from rs3d.data.sampling import ClipSpec

__all__ = [
    "AnnotationError",
    "ClipNormalizer",
    "ClipSpec",
    "SkipTracker",
    "TestClipDataset",
    "TrainClipDataset",
    "TrainInputs",
    "VideoDecodeError",
    "VideoInfo",
    "VideoRecord",
    "build_dataset",
    "build_loader",
    "collate_clips",
    "load_class_names",
    "load_class_names_for",
    "load_records",
    "open_video",
    "probe_video",
]
