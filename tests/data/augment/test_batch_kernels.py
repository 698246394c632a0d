"""tf_batch_op (the batched, torch-only twin used by DATA.AUGMENT_ON_DEVICE) equals tf_augment_op clip by clip.

On the CPU the contract is bit identity with ``torch.stack([tf_augment_op(clip, ...) for clip in videos])`` for
every op, magnitude (also fractional), sign and fill (gray 128 or mirrored), on batches whose clips differ (random,
constant: AutoContrast's hi == lo and Equalize's step 0, low contrast), at odd, tiny and non-square frame sizes and
T = 1. On CUDA (test marked ``gpu``) the ops in EXACT_OPS must equal the CPU result and the float ops may differ by
at most FLOAT_TOLERANCE intensity levels (an FMA contraction or a different division inside a CUDA kernel).
"""
from __future__ import annotations

import pytest
import torch

from rs3d.data.augment import EXACT_OPS, TF_OPS, cutout_box, tf_augment_op, tf_batch_op
from rs3d.data.augment.tf_spec import SIGNED_OPS

MAGNITUDES = (0, 5, 7.5, 10, 15)
FILLS = (128, None)
FLOAT_TOLERANCE = 1  # intensity levels, float ops on CUDA vs the CPU (see the module docstring)


def make_batch(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Three (T, 3, H, W) clips: random, constant, and low contrast (values 100-105)."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, 256, shape, generator=g, dtype=torch.uint8),
                        torch.full(shape, 77, dtype=torch.uint8),
                        torch.randint(100, 106, shape, generator=g, dtype=torch.uint8)])


def make_boxes(videos: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One cutout box per clip, drawn as TFRandAugment draws them."""
    g = torch.Generator().manual_seed(seed)
    return torch.tensor([cutout_box(videos.shape[1:], g) for _ in videos])


def reference(videos: torch.Tensor, op: str, magnitude: float, sign: float, fill: int | None,
              boxes: torch.Tensor | None = None, translate_const: float = 100.0) -> torch.Tensor:
    """The per-clip kernels (rs3d.data.augment.tf_kernels), stacked."""
    box_list = [None] * len(videos) if boxes is None else [tuple(b) for b in boxes.tolist()]
    return torch.stack([tf_augment_op(v, op, magnitude, sign, fill, translate_const, box)
                        for v, box in zip(videos, box_list)])


def assert_matches(videos: torch.Tensor, op: str, magnitude: float, sign: float, fill: int | None,
                   translate_const: float = 100.0) -> None:
    boxes = make_boxes(videos) if op == "Cutout" else None
    out = tf_batch_op(videos, op, magnitude, sign, fill, translate_const, boxes)
    expected = reference(videos, op, magnitude, sign, fill, boxes, translate_const)
    assert out.dtype == torch.uint8 and out.shape == videos.shape
    assert torch.equal(out, expected), (op, magnitude, sign, fill, tuple(videos.shape),
                                        int((out != expected).sum()))


@pytest.mark.parametrize("magnitude", MAGNITUDES)
@pytest.mark.parametrize("op", TF_OPS)
def test_every_op_equals_the_per_clip_kernels(op, magnitude):
    videos = make_batch((2, 3, 17, 23))
    for sign in (1.0, -1.0):
        for fill in FILLS:
            assert_matches(videos, op, magnitude, sign, fill)


@pytest.mark.parametrize("shape", [(1, 3, 3, 5), (2, 3, 1, 1), (1, 3, 2, 7), (3, 3, 5, 4), (1, 3, 16, 9)])
def test_odd_and_tiny_frames_and_single_frame_clips(shape):
    videos = make_batch(shape, seed=1)
    for op in TF_OPS:
        for magnitude in (0, 7.5, 15):
            for sign, fill in ((1.0, 128), (-1.0, None)):
                assert_matches(videos, op, magnitude, sign, fill)


def test_larger_frames_and_another_translation_constant():
    """8x3x64x64: enough pixels for Sharpness's float32 replay and Contrast's folds to matter."""
    videos = make_batch((8, 3, 64, 64), seed=2)
    for op in TF_OPS:
        assert_matches(videos, op, 10, -1.0, None if op in SIGNED_OPS else 128)
    for op in ("TranslateX", "TranslateY"):
        assert_matches(videos, op, 12.5, 1.0, 128, translate_const=30.0)


def test_cutout_boxes_at_the_borders_and_empty_boxes():
    videos = make_batch((4, 3, 9, 11), seed=3)
    for boxes in ([[0, 4, 0, 9, 0, 11], [3, 4, 7, 9, 0, 1], [0, 1, 0, 1, 10, 11]],  # whole clip, edges, corners
                  [[2, 2, 0, 9, 0, 11], [0, 4, 5, 5, 0, 11], [0, 4, 0, 9, 6, 6]]):  # empty in t, y and x
        boxes = torch.tensor(boxes)
        assert torch.equal(tf_batch_op(videos, "Cutout", 10, boxes=boxes), reference(videos, "Cutout", 10, 1.0,
                                                                                     128, boxes))
    assert torch.equal(tf_batch_op(videos, "Cutout", 10, boxes=boxes), videos)  # the empty boxes change nothing


def test_input_is_not_modified_and_output_is_new():
    videos = make_batch((2, 3, 10, 12), seed=4)
    before = videos.clone()
    for op in TF_OPS:
        for magnitude in (5, 15):
            out = tf_batch_op(videos, op, magnitude, boxes=make_boxes(videos))
            assert out.data_ptr() != videos.data_ptr(), op
            assert torch.equal(videos, before), (op, magnitude)


def test_rejects_bad_input():
    videos = make_batch((2, 3, 5, 5))
    with pytest.raises(ValueError, match="unknown"):
        tf_batch_op(videos, "Blur", 10)
    with pytest.raises(ValueError, match="uint8"):
        tf_batch_op(videos.float(), "Invert", 10)
    with pytest.raises(ValueError, match="uint8"):
        tf_batch_op(videos[0], "Invert", 10)
    with pytest.raises(ValueError, match="boxes"):
        tf_batch_op(videos, "Cutout", 10)


@pytest.mark.gpu
def test_cuda_matches_the_cpu():
    """Every op on CUDA vs the (bit-identical) CPU path: EXACT_OPS equal, float ops within FLOAT_TOLERANCE."""
    videos = torch.cat([make_batch((4, 3, 37, 53), seed=5), make_batch((4, 3, 37, 53), seed=6)])
    boxes = make_boxes(videos)
    for op in TF_OPS:
        for magnitude in (0, 5, 7.5, 10, 15):
            for sign, fill in ((1.0, 128), (-1.0, None)):
                cpu = tf_batch_op(videos, op, magnitude, sign, fill, boxes=boxes)
                gpu = tf_batch_op(videos.cuda(), op, magnitude, sign, fill, boxes=boxes.cuda())
                assert gpu.device.type == "cuda"
                difference = (gpu.cpu().int() - cpu.int()).abs().max()
                limit = 0 if op in EXACT_OPS else FLOAT_TOLERANCE
                assert int(difference) <= limit, (op, magnitude, sign, fill, int(difference))
