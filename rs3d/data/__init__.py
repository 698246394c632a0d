"""Kinetics-style clip data: annotations, decoding (decord / PyAV), sampling, augmentation, loaders, device inputs.

A clip's path, in the order a reader follows it: ``decoders`` (decode) -> ``clip_sampling`` / ``epoch_sampler``
(which frames, which videos) -> ``transforms`` (crop box, draws, resize; RandAugment from ``augment``) ->
``dataset`` (a sample) -> ``dataset.collate_clips`` into a ``batch.ClipBatch`` (collate) -> ``device_inputs``
(augment on the device if the workers left it, normalise) -> the trainer's step. ``build`` turns a config into both
ends, telling them where augmentation runs from one answer (``build.augmentation_on_device``).

Worker side (what loader workers run; never imports the device side): ``annotations``, ``splits``, ``decoders``,
``metadata``, ``clip_sampling``, ``epoch_sampler``, ``transforms``, ``dataset``, ``batch``, ``workers``, and in
``augment`` the per-clip ``policies``, ``tv_kernels``, ``tf_kernels`` and ``frame_groups``; ``prep`` (offline
dataset tools) sits on this side too.
Device side: ``device_inputs``.
Neutral (imported by both sides, importing neither): ``draws`` (the draws contract), and in ``augment``
``tf_spec``, ``tv_spec``, ``plans`` and ``batch_kernels`` (torch alone, any device).
``build`` assembles both sides and is imported by neither.
"""

from rs3d.data.annotations import AnnotationError, VideoRecord, load_class_names
from rs3d.data.build import (
    augmentation_on_device,
    build_dataset,
    build_loader,
    build_train_inputs,
    load_class_names_for,
    load_records,
)
from rs3d.data.clip_sampling import ClipSpec
from rs3d.data.dataset import (
    SkipTracker,
    TestClipDataset,
    TrainClipDataset,
    collate_clips,
)
from rs3d.data.decoders import VideoDecodeError, VideoInfo, open_video, probe_video
from rs3d.data.device_inputs import BatchAugment, ClipNormalizer, TrainInputs

__all__ = [
    "AnnotationError",
    "BatchAugment",
    "ClipNormalizer",
    "ClipSpec",
    "SkipTracker",
    "TestClipDataset",
    "TrainClipDataset",
    "TrainInputs",
    "VideoDecodeError",
    "VideoInfo",
    "VideoRecord",
    "augmentation_on_device",
    "build_dataset",
    "build_loader",
    "build_train_inputs",
    "collate_clips",
    "load_class_names",
    "load_class_names_for",
    "load_records",
    "open_video",
    "probe_video",
]
