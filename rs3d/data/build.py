"""The one place where a config becomes datasets, loaders and the training inputs: ``build_loader(cfg, split)`` for
the worker side of a clip's path, ``build_train_inputs`` for the device side, both told where augmentation runs
by one answer (:func:`augmentation_on_device`)."""
from __future__ import annotations

import torch
from fvcore.common.config import CfgNode
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
)

from rs3d.config.loader import ConfigError
from rs3d.data.annotations import VideoRecord, drop_or_fail_missing
from rs3d.data.clip_sampling import ClipSpec
from rs3d.data.dataset import TestClipDataset, TrainClipDataset, collate_clips
from rs3d.data.decoders import available_backends
from rs3d.data.device_inputs import BatchAugment, ClipNormalizer, TrainInputs
from rs3d.data.epoch_sampler import EpochSampler
from rs3d.data.metadata import load_metadata, metadata_path
from rs3d.data.splits import names_classes, read_class_names, read_split, split_options
from rs3d.data.transforms import TestClipTransform, TrainClipTransform
from rs3d.data.workers import resolve_num_workers, worker_init_fn

SPLITS = ("train", "val", "test")


def prepare_data_dir(cfg: CfgNode) -> str:
    """Return DATA.PATH_TO_DATA_DIR, generating the toy dataset there first when DATA.TOY_DATASET is on."""
    data_dir = cfg.DATA.PATH_TO_DATA_DIR
    if not data_dir:
        raise ConfigError("DATA.PATH_TO_DATA_DIR: not set (a folder with train.csv / val.csv / test.csv, or a folder "
                          "of class folders)")
    if cfg.DATA.TOY_DATASET:
        from rs3d.data.prep.toy import ensure_toy_dataset

        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_rank() == 0:  # one writer; the others wait for it
            ensure_toy_dataset(data_dir)
        if distributed:
            torch.distributed.barrier()
    return data_dir


def load_class_names_for(cfg: CfgNode) -> list[str]:
    """Class names (:func:`rs3d.data.splits.read_class_names`: DATA.CLASS_NAMES_FILE, else DATA_DIR/classnames.json,
    else the sorted class folders, else the official train CSV's labels), as many as MODEL.NUM_CLASSES."""
    data_dir = prepare_data_dir(cfg)
    if cfg.MODEL.NUM_CLASSES == 0:
        raise ConfigError(f"MODEL.NUM_CLASSES: 0 (as many as the data has), but {data_dir} names no classes: give "
                          "MODEL.NUM_CLASSES, a classnames.json or a folder of class folders")
    names, source = read_class_names(data_dir, cfg.DATA.CLASS_NAMES_FILE, cfg.DATA.FOLDER_VAL_FRACTION)
    if len(names) != cfg.MODEL.NUM_CLASSES:
        found = (f"has {len(names)} class folders (MODEL.NUM_CLASSES 0 takes the count from the data)"
                 if source == data_dir else f"lists {len(names)} classes")
        raise ConfigError(f"MODEL.NUM_CLASSES: {cfg.MODEL.NUM_CLASSES}, but {source} {found}")
    return names


def load_records(cfg: CfgNode, split: str) -> list[VideoRecord]:
    """Read a split as every tool does (:func:`rs3d.data.splits.read_split`), labels checked against
    MODEL.NUM_CLASSES, then apply DATA.MISSING_FILES."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    data_dir = prepare_data_dir(cfg)
    names = load_class_names_for(cfg) if names_classes(data_dir, split) else None
    records = read_split(data_dir, split, **split_options(cfg), class_names=names, num_classes=cfg.MODEL.NUM_CLASSES)
    return drop_or_fail_missing(records, cfg.DATA.MISSING_FILES)


def clip_spec(cfg: CfgNode) -> ClipSpec:
    """Temporal sampling of one clip."""
    d = cfg.DATA
    return ClipSpec(d.NUM_FRAMES, d.SAMPLING_RATE, d.TARGET_FPS, d.SHORT_VIDEO)


def backends(cfg: CfgNode) -> tuple[str, ...]:
    """Decoder, then the fallback decoder if any; a name no backend registered (:mod:`rs3d.data.decoders.registry`,
    CUSTOM_IMPORTS for one of your own) is a ConfigError naming the key."""
    first, second = cfg.DATA.DECODING_BACKEND, cfg.DATA.FALLBACK_BACKEND
    known = available_backends()
    for key, name in (("DATA.DECODING_BACKEND", first), ("DATA.FALLBACK_BACKEND", second)):
        if name and name not in known:
            raise ConfigError(f"{key}: {name!r} is not one of {', '.join(known)}")
    return (first,) if not second or second == first else (first, second)


def augmentation_on_device(cfg: CfgNode) -> bool:
    """Whether training augmentation (resize, flip, RandAugment) runs on the training device instead of the loader
    workers: DATA.AUGMENT_ON_DEVICE, read here only. The train loader's batches and the train inputs must be built
    from the same answer (``augment_on_device`` of :func:`build_loader` and :func:`build_train_inputs`)."""
    return bool(cfg.DATA.AUGMENT_ON_DEVICE)


def build_dataset(cfg: CfgNode, split: str, multi_view: bool | None = None, augment_on_device: bool | None = None):
    """Train split: augmented random clips (only cropped, with their draws, when ``augment_on_device``; default
    :func:`augmentation_on_device`). Other splits: all test views (``multi_view``) or one centre view."""
    records = load_records(cfg, split)
    on_device = augmentation_on_device(cfg) if augment_on_device is None else augment_on_device
    dataset = _build_dataset(cfg, split, records, multi_view, on_device)
    # Stream facts saved by tools/check_dataset.py spare every worker a probe per video.
    dataset.preload_info(load_metadata(metadata_path(cfg.DATA.PATH_TO_DATA_DIR, split), [r.path for r in records]))
    return dataset


def _build_dataset(cfg: CfgNode, split: str, records: list[VideoRecord], multi_view: bool | None,
                   augment_on_device: bool):
    try:
        return _dataset_from(cfg, split, records, multi_view, augment_on_device)
    except ConfigError:
        raise
    except ValueError as exc:  # the transforms' own argument checks: a bad DATA setting
        raise ConfigError(f"DATA: {exc}") from None


def _dataset_from(cfg: CfgNode, split: str, records: list[VideoRecord], multi_view: bool | None,
                  augment_on_device: bool):
    d = cfg.DATA
    if split == "train":
        transform = TrainClipTransform(
            d.TRAIN_CROP_SIZE, d.TRAIN_CROP_MODE, tuple(d.TRAIN_CROP_AREA), tuple(d.TRAIN_CROP_ASPECT),
            tuple(d.TRAIN_JITTER_SCALES), d.FLIP_PROB, d.RANDAUGMENT_LAYERS, d.RANDAUGMENT_MAGNITUDE,
            d.RANDAUGMENT_POLICY)
        return TrainClipDataset(records, clip_spec(cfg), transform, backends(cfg), d.CLIPS_PER_VIDEO,
                                d.MAX_DECODE_RETRIES, cfg.SEED, augment_on_device)
    multi_view = split == "test" if multi_view is None else multi_view
    num_clips = cfg.TEST.NUM_ENSEMBLE_VIEWS if multi_view else 1
    num_crops = cfg.TEST.NUM_SPATIAL_CROPS if multi_view else 1
    return TestClipDataset(records, clip_spec(cfg), TestClipTransform(d.TEST_CROP_SIZE, num_crops), num_clips,
                           backends(cfg))


def build_loader(cfg: CfgNode, split: str, multi_view: bool | None = None, rank: int = 0, world_size: int = 1,
                 seed: int | None = None, augment_on_device: bool | None = None) -> DataLoader:
    """DataLoader yielding uint8 batches (see ``collate_clips``); sharded by rank when world_size > 1. Its workers
    (DATA_LOADER.NUM_WORKERS, "auto" fits the machine) leave stop signals sent to the job to the trainer
    (``rs3d.data.workers``).

    Training batches hold TRAIN.BATCH_SIZE clips per process (BATCH_SIZE / CLIPS_PER_VIDEO videos) and
    the loader's sampler is an :class:`EpochSampler`: call ``loader.sampler.set_epoch(e)`` every epoch.
    Test batches hold TEST.BATCH_SIZE videos with all their views. ``augment_on_device`` (default
    :func:`augmentation_on_device`): training batches hold the crops and their draws instead of augmented clips.
    """
    dataset = build_dataset(cfg, split, multi_view, augment_on_device)
    train = split == "train"
    if train:
        per_video = cfg.DATA.CLIPS_PER_VIDEO
        if cfg.TRAIN.BATCH_SIZE % per_video:
            raise ConfigError(f"TRAIN.BATCH_SIZE: {cfg.TRAIN.BATCH_SIZE} is not a multiple of "
                              f"DATA.CLIPS_PER_VIDEO {per_video}")
        batch_size = cfg.TRAIN.BATCH_SIZE // per_video
    else:
        batch_size = cfg.TEST.BATCH_SIZE
    seed = cfg.SEED if seed is None else seed
    if world_size > 1:
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=train, seed=seed, drop_last=train)
    else:
        # Its own generator: the DataLoader draws worker seeds from *its* generator only when it creates
        # an iterator (not when persistent workers restart), which would shift a shared generator.
        order = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(dataset, generator=order) if train else SequentialSampler(dataset)
    if train:
        sampler = EpochSampler(sampler, seed)
        sampler.set_epoch(0)
    workers = resolve_num_workers(cfg.DATA_LOADER.NUM_WORKERS)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate_clips,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(), drop_last=train,
        persistent_workers=cfg.DATA_LOADER.PERSISTENT_WORKERS and workers > 0,
        prefetch_factor=cfg.DATA_LOADER.PREFETCH_FACTOR if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed + 1),
        worker_init_fn=worker_init_fn() if workers > 0 else None,  # a stop sent to the job is the trainer's
    )


def build_train_inputs(cfg: CfgNode, device: torch.device | str = "cpu", channels_last: bool = False,
                       augment_on_device: bool | None = None) -> TrainInputs:
    """Training batch -> model input on ``device``: DATA's normalisation, after the crops' resize, flip and
    RandAugment when ``augment_on_device`` (default :func:`augmentation_on_device`; pass the train loader's)."""
    d = cfg.DATA
    on_device = augmentation_on_device(cfg) if augment_on_device is None else augment_on_device
    try:
        augment = BatchAugment(d.RANDAUGMENT_POLICY, d.RANDAUGMENT_MAGNITUDE) if on_device else None
    except ValueError as exc:
        raise ConfigError(f"DATA: {exc}") from None
    return TrainInputs(ClipNormalizer.from_config(cfg, device, channels_last), augment, d.TRAIN_CROP_SIZE)
