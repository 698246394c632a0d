"""The one place where a config becomes datasets and loaders: ``build_loader(cfg, split)``."""
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
from rs3d.data.batch import ClipBatch
from rs3d.data.batch_augment import BatchAugment
from rs3d.data.dataset import TestClipDataset, TrainClipDataset, collate_clips
from rs3d.data.decoders import available_backends
from rs3d.data.metadata import load_metadata, metadata_path
from rs3d.data.samplers import EpochSampler
from rs3d.data.sampling import ClipSpec
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



def build_dataset(cfg: CfgNode, split: str, multi_view: bool | None = None):
    """Train split: augmented random clips. Other splits: all test views (``multi_view``) or one centre view."""
    records = load_records(cfg, split)
    dataset = _build_dataset(cfg, split, records, multi_view)
    # Stream facts saved by tools/check_dataset.py spare every worker a probe per video.
    dataset.preload_info(load_metadata(metadata_path(cfg.DATA.PATH_TO_DATA_DIR, split), [r.path for r in records]))
    return dataset


def _build_dataset(cfg: CfgNode, split: str, records: list[VideoRecord], multi_view: bool | None):
    try:
        return _dataset_from(cfg, split, records, multi_view)
    except ConfigError:
        raise
    except ValueError as exc:  # the transforms' own argument checks: a bad DATA setting
        raise ConfigError(f"DATA: {exc}") from None


def _dataset_from(cfg: CfgNode, split: str, records: list[VideoRecord], multi_view: bool | None):
    d = cfg.DATA
    if split == "train":
        transform = TrainClipTransform(
            d.TRAIN_CROP_SIZE, d.TRAIN_CROP_MODE, tuple(d.TRAIN_CROP_AREA), tuple(d.TRAIN_CROP_ASPECT),
            tuple(d.TRAIN_JITTER_SCALES), d.FLIP_PROB, d.RANDAUGMENT_LAYERS, d.RANDAUGMENT_MAGNITUDE,
            d.RANDAUGMENT_POLICY)
        return TrainClipDataset(records, clip_spec(cfg), transform, backends(cfg), d.CLIPS_PER_VIDEO,
                                d.MAX_DECODE_RETRIES, cfg.SEED, d.AUGMENT_ON_DEVICE)
    multi_view = split == "test" if multi_view is None else multi_view
    num_clips = cfg.TEST.NUM_ENSEMBLE_VIEWS if multi_view else 1
    num_crops = cfg.TEST.NUM_SPATIAL_CROPS if multi_view else 1
    return TestClipDataset(records, clip_spec(cfg), TestClipTransform(d.TEST_CROP_SIZE, num_crops), num_clips,
                           backends(cfg))


def build_loader(cfg: CfgNode, split: str, multi_view: bool | None = None, rank: int = 0, world_size: int = 1,
                 seed: int | None = None) -> DataLoader:
    """DataLoader yielding uint8 batches (see ``collate_clips``); sharded by rank when world_size > 1. Its workers
    (DATA_LOADER.NUM_WORKERS, "auto" fits the machine) leave stop signals sent to the job to the trainer
    (``rs3d.data.workers``).

    Training batches hold TRAIN.BATCH_SIZE clips per process (BATCH_SIZE / CLIPS_PER_VIDEO videos) and
    the loader's sampler is an :class:`EpochSampler`: call ``loader.sampler.set_epoch(e)`` every epoch.
    Test batches hold TEST.BATCH_SIZE videos with all their views.
    """
    dataset = build_dataset(cfg, split, multi_view)
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


class ClipNormalizer:
    """uint8 (N, 3, T, H, W) on the host -> normalised float on ``device``, batched (the loader stays uint8)."""

    def __init__(self, mean: list[float], std: list[float], mode: str = "mean_std",
                 device: torch.device | str = "cpu", channels_last: bool = False):
        if mode not in ("mean_std", "unit"):
            raise ConfigError(f"DATA.NORMALIZATION: {mode!r} is not one of mean_std, unit")
        self.device = torch.device(device)
        self.channels_last = channels_last
        shape = (1, 3, 1, 1, 1)
        m = torch.tensor(mean if mode == "mean_std" else [0.0] * 3).view(shape) * 255.0
        s = torch.tensor(std if mode == "mean_std" else [1.0] * 3).view(shape) * 255.0
        self.mean, self.inv_std = m.to(self.device), (1.0 / s).to(self.device)

    @classmethod
    def from_config(cls, cfg: CfgNode, device: torch.device | str = "cpu", channels_last: bool = False):
        return cls(list(cfg.DATA.MEAN), list(cfg.DATA.STD), cfg.DATA.NORMALIZATION, device, channels_last)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Normalise a (N, 3, T, H, W) or (N, V, 3, T, H, W) uint8 batch on the device."""
        views = video.shape[:-4]
        x = video.to(self.device, non_blocking=True).reshape(-1, *video.shape[-4:]).float()
        x = (x - self.mean) * self.inv_std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x if len(views) == 1 else x.reshape(*views, *x.shape[1:])


class TrainInputs:
    """A training batch -> the model's input on the device: under DATA.AUGMENT_ON_DEVICE the crops' resize, flip and
    RandAugment there first (:class:`BatchAugment`), then normalisation (:class:`ClipNormalizer`)."""

    def __init__(self, normalizer: ClipNormalizer, augment: BatchAugment | None = None, crop_size: int = 224):
        self.normalizer, self.augment, self.crop_size = normalizer, augment, crop_size

    @classmethod
    def from_config(cls, cfg: CfgNode, device: torch.device | str = "cpu", channels_last: bool = False):
        d = cfg.DATA
        try:
            augment = BatchAugment(d.RANDAUGMENT_POLICY, d.RANDAUGMENT_MAGNITUDE) if d.AUGMENT_ON_DEVICE else None
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"DATA: {exc}") from None
        return cls(ClipNormalizer.from_config(cfg, device, channels_last), augment, d.TRAIN_CROP_SIZE)

    def __call__(self, batch: ClipBatch) -> torch.Tensor:
        video = batch["video"]
        if self.augment is not None:
            video = self.augment(video, batch["augment"], self.normalizer.device, self.crop_size)
        return self.normalizer(video)
