"""DATA.AUGMENT_ON_DEVICE: workers draw and crop, BatchAugment applies the draws to the batch; the result must be the
worker-side path's, bit for bit on the CPU, for every policy, from the transform up to trained weights."""
import os

import pytest
import torch
from conftest import REPO_ROOT

from rs3d.config import load_config
from rs3d.data import BatchAugment, TrainClipDataset, build_dataset, build_train_inputs, collate_clips
from rs3d.data.draws import AugmentDraws, encode_draws, policy_ops
from rs3d.data.transforms import TrainClipTransform

ROOT = REPO_ROOT
POLICIES = [("torchvision", 9), ("torchvision", 30), ("tf", 10), ("tf", 15), ("tf_reflect", 7.5)]


def _frames(seed: int, t: int = 5, h: int = 45, w: int = 61) -> torch.Tensor:
    """Decoder-like frames: (T, 3, H, W) views of interleaved (T, H, W, 3) pixels with some structure."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (t, h // 3 + 1, w // 3 + 1, 3), dtype=torch.uint8, generator=g)
    pixels = base.repeat_interleave(3, 1).repeat_interleave(3, 2)[:, :h, :w].contiguous()
    pixels[:, ::7] //= 2  # more than a few distinct values per channel, uneven histograms
    return pixels.permute(0, 3, 1, 2)


@pytest.mark.parametrize("policy,magnitude", POLICIES)
def test_batch_equals_worker_path_bit_for_bit(policy, magnitude):
    """16 clips, each drawn with its own seed: every op of the policy shows up, with both signs, in groups."""
    transform = TrainClipTransform(32, flip_prob=0.5, randaug_layers=3, randaug_magnitude=magnitude,
                                   randaug_policy=policy)
    worker, crops, draws = [], [], []
    for seed in range(16):
        frames = _frames(seed)
        torch.manual_seed(seed)
        box = transform.sample_box(45, 61)
        worker.append(transform(frames, box, (1.0, 1.0)))
        torch.manual_seed(seed)
        box = transform.sample_box(45, 61)
        crops.append(transform.cut(frames, box, (1.0, 1.0)))
        draws.append(transform.draw(len(frames)))
    assert len({c.shape for c in crops}) > 1  # random-resized crops of many sizes, resized by BatchAugment
    batch = BatchAugment(policy, magnitude)(crops, encode_draws(draws, policy, 3), "cpu", 32)
    assert batch.shape == (16, 3, 5, 32, 32) and batch.dtype == torch.uint8
    for k, expected in enumerate(worker):
        assert torch.equal(batch[k], expected), f"clip {k} ({draws[k]}) differs from the worker path"
    assert any(d.flip for d in draws) and not all(d.flip for d in draws)


def test_every_op_of_each_policy_matches():
    """Each op forced on every clip of a batch, with per-clip signs and Cutout boxes, against the CPU kernels."""
    for policy, magnitude in (("torchvision", 12), ("tf", 10), ("tf_reflect", 10)):
        transform = TrainClipTransform(24, flip_prob=0, randaug_layers=1, randaug_magnitude=magnitude,
                                       randaug_policy=policy)
        crops = torch.stack([_frames(s, 3, 24, 24).permute(0, 2, 3, 1).contiguous() for s in range(4)])
        for op in policy_ops(policy):
            draws = []
            for k in range(4):
                sign = -1.0 if k % 2 else 1.0
                value = sign * 0.25 if policy == "torchvision" else sign
                box = (0, 1 + k % 3, k, 20, 2 * k, 24) if op == "Cutout" else None
                draws.append(AugmentDraws(bool(k == 3), ((op, value, box),)))
            out = BatchAugment(policy, magnitude)(crops, encode_draws(draws, policy, 1), "cpu", 24)
            for k, d in enumerate(draws):
                planar = crops[k].permute(0, 3, 1, 2).contiguous()
                expected = transform.apply(planar, d).permute(1, 0, 2, 3)
                assert torch.equal(out[k], expected), f"{policy} {op} clip {k}"


def test_encoding_marks_missing_ops():
    draws = [AugmentDraws(True, (("Cutout", 1.0, (0, 2, 1, 3, 4, 5)),)), AugmentDraws(False)]
    enc = encode_draws(draws, "tf", 2)
    assert enc["flip"].tolist() == [True, False]
    assert enc["op"].tolist() == [[policy_ops("tf").index("Cutout"), -1], [-1, -1]]
    assert enc["box"][0, 0].tolist() == [0, 2, 1, 3, 4, 5]


def _cfg(toy_dir, out, *opts):
    from conftest import TINY
    return load_config(os.path.join(ROOT, "configs/toy/rs3d_tiny.yaml"),
                       TINY + ["DATA.PATH_TO_DATA_DIR", toy_dir, "OUTPUT_DIR", str(out), "DATA.RANDAUGMENT_LAYERS", "2",
                               "DATA.RANDAUGMENT_POLICY", "tf", "DATA.CLIPS_PER_VIDEO", "2", "DATA.FLIP_PROB", "0.5",
                               *opts])


def test_loader_batches_match_with_repeated_augmentation(toy_dir, tmp_path):
    """Dataset -> collate -> train inputs: the same normalised batch either way, two clips per video."""
    inputs = {}
    for on_device in (False, True):
        cfg = _cfg(toy_dir, tmp_path, "DATA.AUGMENT_ON_DEVICE", str(on_device))
        dataset = build_dataset(cfg, "train")
        assert isinstance(dataset, TrainClipDataset) and dataset.augment_on_device == on_device
        batch = collate_clips([dataset[(1, i)] for i in range(4)])
        assert len(batch["video"]) == 8 and ("augment" in batch) == on_device
        if on_device:
            assert 0 < int(batch["augment"]["flip"].sum()) < 8 and (batch["augment"]["op"] >= 0).sum() > 8
        inputs[on_device] = build_train_inputs(cfg)(batch)
    assert torch.equal(inputs[False], inputs[True])


def test_loader_and_inputs_from_different_decisions_fail_at_the_first_batch(toy_dir, tmp_path):
    """The answer passed to both ends decides (not DATA.AUGMENT_ON_DEVICE); ends built from different answers
    refuse the batch with a message instead of normalising raw crops or augmenting twice."""
    cfg = _cfg(toy_dir, tmp_path, "DATA.AUGMENT_ON_DEVICE", "False")
    for on_device in (False, True):
        batch = collate_clips([build_dataset(cfg, "train", augment_on_device=on_device)[(0, i)] for i in range(2)])
        assert ("augment" in batch) == on_device
        with pytest.raises(ValueError, match="same augment_on_device decision"):
            build_train_inputs(cfg, augment_on_device=not on_device)(batch)
        assert build_train_inputs(cfg, augment_on_device=on_device)(batch).shape == (4, 3, 4, 32, 32)


def test_trainer_builds_both_ends_from_one_decision(toy_dir, tmp_path):
    """Trainer reads DATA.AUGMENT_ON_DEVICE once; its train loader and train inputs both follow that answer."""
    from rs3d.engine import Trainer
    cfg = _cfg(toy_dir, tmp_path, "DATA.AUGMENT_ON_DEVICE", "True", "TRAIN.ENABLE", "False")
    trainer = Trainer(cfg)
    assert trainer.augment_on_device and isinstance(trainer.train_inputs.augment, BatchAugment)
    assert trainer.build_train_loader(cfg).dataset.augment_on_device
    trainer.augment_on_device = False  # e.g. a subclass that decides otherwise: both builders follow it
    assert trainer.build_train_inputs(cfg).augment is None
    assert not trainer.build_train_loader(cfg).dataset.augment_on_device


@pytest.mark.slow
def test_training_gives_the_same_weights(toy_dir, tmp_path):
    from rs3d.engine import Trainer
    weights = []
    for on_device in (False, True):
        cfg = _cfg(toy_dir, tmp_path / str(on_device), "DATA.AUGMENT_ON_DEVICE", str(on_device),
                   "SOLVER.MAX_EPOCH", "1", "TEST.ENABLE", "False", "DATA.RANDAUGMENT_POLICY", "torchvision",
                   "DATA.RANDAUGMENT_MAGNITUDE", "9")
        trainer = Trainer(cfg)
        trainer.train()
        weights.append(trainer.model.state_dict())
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key
