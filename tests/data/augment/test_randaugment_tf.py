"""DATA.RANDAUGMENT_POLICY tf / tf_reflect: every op equals TensorFlow Model Garden's, checked against TF's outputs.

The fixture (tests/fixtures/tf/randaugment.npz, made by make_randaugment_fixture.py with tensorflow-cpu 2.21 and
tf-models-official 2.20.0) holds Model Garden's ops applied to small 4-D clips at magnitudes 0, 5, 10 and 15, both
signs of the geometric ops, with gray (128) and mirrored out-of-frame fill. Colour ops must match bit for bit.
Geometric ops must too, except Rotate, where TF's float32 sin/cos may differ from the correctly rounded ones by an
ulp at some angles: that may move a pixel that sits within ~1e-5 of a rounding boundary, so up to
ROTATE_TOLERANCE differing pixels are allowed (none differ on this fixture, nor on an 80-angle sweep at 57x75).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from torchvision import tv_tensors
from torchvision.transforms import v2

from rs3d.data.augment import (
    TF_OPS,
    FastRandAugment,
    TFRandAugment,
    build_randaugment,
    cutout_box,
    policies,
    tf_augment_op,
    tf_batch_op,
    tf_op_argument,
)
from rs3d.data.transforms import TrainClipTransform

FIXTURE = np.load(Path(REPO_ROOT) / "tests" / "fixtures" / "tf" / "randaugment.npz")
COLOUR = torch.from_numpy(FIXTURE["colour_input"])
COORD = torch.from_numpy(FIXTURE["coord_input"])
ROTATE_TOLERANCE = 2  # pixels per output; see the module docstring
COLOUR_KEYS = [k for k in FIXTURE.files if k.count("/") <= 1 and not k.startswith(("Cutout", "colour", "coord"))]
GEOMETRIC_KEYS = [k for k in FIXTURE.files if k.count("/") == 2]


@pytest.mark.parametrize("key", COLOUR_KEYS)
def test_colour_ops_equal_tensorflow_bit_for_bit(key):
    op, _, magnitude = key.partition("/")
    out = tf_augment_op(COLOUR, op, float(magnitude or 0))
    assert out.dtype == torch.uint8 and torch.equal(out, torch.from_numpy(FIXTURE[key])), key


@pytest.mark.parametrize("key", GEOMETRIC_KEYS)
def test_geometric_ops_equal_tensorflow(key):
    op, fill, signed = key.split("/")
    magnitude = float(signed)
    out = tf_augment_op(COORD, op, abs(magnitude), -1.0 if magnitude < 0 else 1.0,
                        fill=None if fill == "reflect" else 128)
    differing = int((out != torch.from_numpy(FIXTURE[key])).any(dim=1).sum())  # pixels, over all frames
    assert differing <= (ROTATE_TOLERANCE if op == "Rotate" else 0), (key, differing)


def test_one_plan_cache_keeps_policies_fill_modes_and_paths_apart():
    """Every geometric plan lives in one cache (rs3d.data.augment.plans): torchvision's ShearX and TF's, gray and
    mirrored, per clip and batched, at the very same argument and frame size, run back to back (the second round
    from the cache) must each still equal their own reference."""
    argument = float(np.float32(tf_op_argument("ShearX", 10)))  # TF's float32 argument, as its plans are keyed
    reference = v2.RandAugment()
    expected = reference._apply_image_or_video_transform(COORD, "ShearX", argument, reference.interpolation,
                                                         reference._fill)
    for _ in range(2):
        assert torch.equal(FastRandAugment().apply_op(COORD, "ShearX", argument), expected)
        for fill in ("128", "reflect"):
            tf_expected = torch.from_numpy(FIXTURE[f"ShearX/{fill}/10"])
            value = None if fill == "reflect" else 128
            assert torch.equal(tf_augment_op(COORD, "ShearX", 10, fill=value), tf_expected), fill
            assert torch.equal(tf_batch_op(COORD[None], "ShearX", 10, fill=value)[0], tf_expected), fill


def test_fixture_covers_every_op_and_both_fills():
    ops = {k.split("/")[0] for k in FIXTURE.files if "input" not in k}
    assert ops == set(TF_OPS)
    assert {k.split("/")[1] for k in GEOMETRIC_KEYS} == {"reflect", "128"}


@pytest.mark.parametrize("seed", [1, 2])
def test_cutout_fills_a_box_with_128_like_tensorflow(seed):
    expected = torch.from_numpy(FIXTURE[f"Cutout/seed{seed}"])
    changed = (expected != COLOUR).any(dim=1)  # the input holds no 128
    t, y, x = changed.nonzero(as_tuple=True)
    box = (int(t.min()), int(t.max()) + 1, int(y.min()), int(y.max()) + 1, int(x.min()), int(x.max()) + 1)
    assert torch.equal(tf_augment_op(COLOUR, "Cutout", 10, box=box), expected)


def test_cutout_boxes_come_from_tensorflows_distribution():
    """TF's video cutout boxes (200 seeds, 8x31x41 clip) all lie in the support of rs3d's sampler and vice versa."""
    tf_boxes = FIXTURE["Cutout/boxes_8x31x41"].astype(np.int64)
    generator = torch.Generator().manual_seed(0)
    ours = np.array([cutout_box((8, 3, 31, 41), generator) for _ in range(4000)])

    def extents(boxes: np.ndarray) -> list[set[int]]:
        return [set((boxes[:, 2 * i + 1] - boxes[:, 2 * i]).tolist()) for i in range(3)]

    for theirs, mine in zip(extents(tf_boxes), extents(ours)):
        assert theirs <= mine
    # half-sizes [1, 2) frames, [7, 15) rows, [10, 20) columns: full boxes are 2, 14-28 and 20-38 long
    assert max(extents(ours)[0]) == 2 and max(extents(ours)[1]) == 28 and max(extents(ours)[2]) == 38
    assert abs(ours[:, 3].mean() - tf_boxes[:, 3].mean()) < 3  # box bottoms: same distribution, roughly


def test_arguments_on_tfs_scale():
    assert tf_op_argument("Rotate", 10) == 30.0 and tf_op_argument("Rotate", 15) == 45.0
    assert tf_op_argument("TranslateX", 10) == 100.0 and tf_op_argument("ShearY", 15) == pytest.approx(0.45)
    assert [tf_op_argument("Posterize", m) for m in (0, 5, 10, 15)] == [0, 2, 4, 6]
    assert [tf_op_argument("Solarize", m) for m in (5, 10, 15)] == [128, 256, 384]
    assert [tf_op_argument("SolarizeAdd", m) for m in (10, 15)] == [110, 165]
    assert [tf_op_argument("Color", m) for m in (0, 5, 10, 15)] == pytest.approx([0.1, 1.0, 1.9, 2.8])
    assert tf_op_argument("Cutout", 10) is None and tf_op_argument("Equalize", 10) is None
    # the uint8 threshold wraps: magnitude 10 inverts every pixel, 15 solarizes like 5
    assert torch.equal(tf_augment_op(COLOUR, "Solarize", 10), 255 - COLOUR)
    assert torch.equal(tf_augment_op(COLOUR, "Solarize", 15), tf_augment_op(COLOUR, "Solarize", 5))


def test_equalize_and_autocontrast_use_the_whole_clip():
    """A dark frame next to a bright one: TF stretches the clip's range, not each frame's."""
    clip = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    clip[0] = torch.randint(50, 101, (3, 8, 8), generator=torch.Generator().manual_seed(0))
    clip[1] = torch.randint(150, 201, (3, 8, 8), generator=torch.Generator().manual_seed(1))
    for op in ("AutoContrast", "Equalize"):
        out = tf_augment_op(clip, op, 10)
        assert int(out[0].max()) < 200 and int(out[1].min()) > 60, op  # per frame, both would span ~0-255


def test_draws_are_uniform_over_16_ops_and_identity(monkeypatch):
    applied = []
    monkeypatch.setattr(policies, "tf_augment_op", lambda video, op, *args: applied.append((op, args[1])) or video)
    transform, draws = TFRandAugment(num_layers=1, magnitude=10, generator=torch.Generator().manual_seed(0)), 17_000
    clip = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    for _ in range(draws):
        transform(clip)
    counts = Counter(op for op, _ in applied)
    counts["identity"] = draws - len(applied)
    assert set(counts) == set(TF_OPS) | {"identity"}
    assert all(800 < n < 1200 for n in counts.values()), counts  # expected 1000 each (17 choices)
    signs = [sign for op, sign in applied if op in ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")]
    assert 0.45 < signs.count(-1.0) / len(signs) < 0.55


def test_a_seed_fixes_the_clip_and_the_type_is_kept():
    clip = tv_tensors.Video(COLOUR.clone())
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        results.append(TFRandAugment(num_layers=3, magnitude=15)(clip))
    assert type(results[0]) is tv_tensors.Video and torch.equal(results[0], results[1])
    own = [TFRandAugment(3, 15, generator=torch.Generator().manual_seed(5))(clip) for _ in range(2)]
    assert torch.equal(own[0], own[1])


def test_train_transform_policies_and_errors():
    assert isinstance(build_randaugment(2, 10, "tf"), TFRandAugment) and build_randaugment(2, 10, "tf").fill == 128
    assert build_randaugment(2, 15, "tf_reflect").fill is None
    assert type(build_randaugment(2, 10, "torchvision")).__name__ == "FastRandAugment"
    assert build_randaugment(0, 10, "tf") is None
    with pytest.raises(ValueError, match="DATA.RANDAUGMENT_POLICY must be one of"):
        TrainClipTransform(32, randaug_layers=2, randaug_policy="timm")
    with pytest.raises(ValueError, match="DATA.RANDAUGMENT_MAGNITUDE must be a bin 0-30"):
        build_randaugment(2, 31, "torchvision")
    with pytest.raises(ValueError, match="DATA.RANDAUGMENT_MAGNITUDE must be >= 0"):
        build_randaugment(2, -1, "tf")
    with pytest.raises(ValueError, match=r"\(T, 3, H, W\) uint8 clip"):
        tf_augment_op(COLOUR.float(), "Invert", 10)
    frames = COLOUR[:1].expand(6, -1, -1, -1)
    transform = TrainClipTransform(16, randaug_layers=2, randaug_magnitude=15, randaug_policy="tf")
    torch.manual_seed(0)
    for _ in range(10):
        clip = transform(frames, transform.sample_box(23, 31), (1.0, 1.0))
        assert clip.shape == (3, 6, 16, 16) and clip.dtype == torch.uint8
