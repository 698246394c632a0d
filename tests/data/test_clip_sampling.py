"""Clip index sampling and whole-clip augmentation."""
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from rs3d.data.clip_sampling import (
    ClipSpec,
    clip_indices,
    merge_indices,
    random_start,
    start_step,
    uniform_starts,
)
from rs3d.data.transforms import (
    Box,
    TestClipTransform,
    TrainClipTransform,
    cut_clip,
    decode_scale,
    scaled_size,
)


def test_clip_indices_stride_loop_and_pad():
    spec = ClipSpec(4, 3)
    np.testing.assert_array_equal(clip_indices(spec, 5, 100, 30.0), [5, 8, 11, 14])
    np.testing.assert_array_equal(clip_indices(spec, 0, 7, 30.0), [0, 3, 6, 2])  # loops, as TF
    np.testing.assert_array_equal(clip_indices(ClipSpec(4, 3, short_video="pad"), 0, 7, 30.0), [0, 3, 6, 6])


def test_target_fps_resamples_the_stride():
    spec = ClipSpec(4, 2, target_fps=30.0)
    assert spec.stride(60.0) == 4.0 and spec.stride(15.0) == 1.0
    np.testing.assert_array_equal(clip_indices(spec, 0, 100, 60.0), [0, 4, 8, 12])
    np.testing.assert_array_equal(clip_indices(ClipSpec(3, 2, target_fps=20.0), 0, 100, 30.0), [0, 3, 6])


def test_random_start_keeps_the_clip_inside_the_video():
    spec = ClipSpec(8, 4)  # span 29
    g = torch.Generator().manual_seed(0)
    starts = [random_start(spec, 40, 30.0, g) for _ in range(500)]
    assert min(starts) == 0 and max(starts) == 11
    assert all(clip_indices(spec, s, 40, 30.0).max() < 40 for s in starts)
    assert random_start(spec, 10, 30.0, g) == 0  # short video: from the start, then loop


def test_starts_land_on_reference_frames_when_the_stride_allows():
    assert start_step(ClipSpec(8, 2), 30.0, 2) == 2 and start_step(ClipSpec(8, 4), 25.0, 2) == 2
    assert start_step(ClipSpec(8, 1), 30.0, 2) == 1  # odd stride: clips need odd frames anyway
    assert start_step(ClipSpec(8, 2, target_fps=30.0), 25.0, 2) == 1  # resampled: stride 1.67
    assert start_step(ClipSpec(8, 2), 30.0, 1) == 1
    spec, g = ClipSpec(8, 4), torch.Generator().manual_seed(0)  # span 29, room 11
    starts = [random_start(spec, 40, 30.0, g, step=2) for _ in range(500)]
    assert set(starts) == {0, 2, 4, 6, 8, 10}
    assert all(clip_indices(spec, s, 40, 30.0).max() < 40 and (clip_indices(spec, s, 40, 30.0) % 2 == 0).all()
               for s in starts)
    assert uniform_starts(ClipSpec(8, 2), 116, 30.0, 5, step=2) == [0.0, 24.0, 50.0, 74.0, 100.0]  # 25.25 -> 24


def test_uniform_starts_cover_the_video_evenly():
    spec = ClipSpec(8, 2)  # span 15
    starts = uniform_starts(spec, 115, 30.0, 5)
    assert starts == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert uniform_starts(spec, 115, 30.0, 1) == [50.0]
    assert clip_indices(spec, starts[-1], 115, 30.0).max() == 114


def test_merge_indices_decodes_each_frame_once():
    unique, positions = merge_indices([np.array([4, 6, 8]), np.array([6, 8, 10]), np.array([0, 0, 2])])
    np.testing.assert_array_equal(unique, [0, 2, 4, 6, 8, 10])
    np.testing.assert_array_equal(unique[positions[1]], [6, 8, 10])
    np.testing.assert_array_equal(unique[positions[2]], [0, 0, 2])


def test_train_transform_draws_once_per_clip():
    torch.manual_seed(0)
    frame = torch.randint(0, 256, (1, 3, 90, 120), dtype=torch.uint8)
    frames = frame.expand(16, -1, -1, -1)  # 16 identical frames
    transform = TrainClipTransform(64, flip_prob=0.5, randaug_layers=2, randaug_magnitude=15)
    for _ in range(10):
        box = transform.sample_box(90, 120)
        clip = transform(frames, box, (1.0, 1.0))
        assert clip.shape == (3, 16, 64, 64) and clip.dtype == torch.uint8
        assert (clip == clip[:, :1]).all()  # every frame got the same crop, flip and ops


def test_planned_decode_scale_matches_crop_then_resize():
    torch.manual_seed(1)
    full = F.resize(torch.randint(0, 256, (4, 3, 8, 11), dtype=torch.uint8), [256, 340], antialias=True)
    box = Box(top=20, left=60, height=180, width=200)
    scale = decode_scale([box], 112)
    size = scaled_size(256, 340, scale)
    assert size == (160, 192)  # even sizes
    decoded = F.resize(full, list(size), antialias=True)  # what the decoder would return
    actual = (decoded.shape[-2] / 256, decoded.shape[-1] / 340)
    planned = cut_clip(decoded, box, actual, 112)  # the snapped box is within a pixel of the exact one
    reference = F.resize(full[..., 20:200, 60:260], [112, 112], antialias=True)
    assert planned.shape == reference.shape == (4, 3, 112, 112)
    # Measured 3.08 (the snapped box sits half a pixel off); the box one pixel lower gives 5.9.
    assert (planned.float() - reference.float()).abs().mean() < 3.3
    # A mild shrink decodes at the stored size and resizes the crop: antialiased as torchvision's own resize, on
    # fine detail (2x2-pixel blocks) where an unfiltered resize is ~16 grey levels off.
    fine = torch.randint(0, 256, (2, 3, 128, 170), dtype=torch.uint8).repeat_interleave(2, -1).repeat_interleave(2, -2)
    mild = Box(top=10, left=30, height=150, width=160)
    assert scaled_size(256, 340, decode_scale([mild], 112)) is None
    planned = cut_clip(fine, mild, (1.0, 1.0), 112)
    reference = F.resize(fine[..., 10:160, 30:190], [112, 112], antialias=True)
    assert (planned.float() - reference.float()).abs().max() <= 1


def test_small_boxes_decode_at_full_size():
    assert decode_scale([Box(0, 0, 50, 60)], 112) == (1.0, 1.0)
    assert scaled_size(256, 340, (1.0, 1.0)) is None
    # Repeated augmentation: one decode serves every clip, so the least shrunk box decides.
    assert decode_scale([Box(0, 0, 224, 224), Box(0, 0, 112, 448)], 112) == (1.0, 0.5)


def test_mild_shrinks_decode_at_the_stored_size():
    # FFmpeg's scaler costs more than a torch resize of the crop until over half the pixels go.
    assert scaled_size(256, 340, (0.7, 0.7)) is None  # 49% of the pixels would remain
    assert scaled_size(256, 340, (1.0, 0.5)) is None
    assert scaled_size(720, 1280, (0.5, 0.5)) == (360, 640)
    assert scaled_size(720, 1280, (0.3, 0.35)) == (216, 448)


def test_jitter_mode_crops_at_the_jittered_short_side():
    transform = TrainClipTransform(64, mode="jitter", jitter=(80, 80), flip_prob=0)
    box = transform.sample_box(120, 160)
    assert box.height == box.width == 96  # 64 px at short side 80 is 96 px at short side 120
    assert decode_scale([box], 64) == pytest.approx((80 / 120, 80 / 120))


@pytest.mark.parametrize("shape,axis", [((120, 160), -1), ((160, 120), -2)])
def test_test_transform_three_crops_span_the_long_side(shape, axis):
    h, w = shape
    frames = torch.zeros(2, 3, h, w, dtype=torch.uint8)
    if axis == -1:
        frames[..., :] = torch.linspace(0, 255, w).round().to(torch.uint8)
    else:
        frames[..., :, :] = torch.linspace(0, 255, h).round().to(torch.uint8)[:, None]
    transform = TestClipTransform(120, 3)
    assert transform.decode_size(h, w) == shape
    crops = transform(frames)
    assert crops.shape == (3, 3, 2, 120, 120)
    means = [c.float().mean().item() for c in crops]
    assert means[0] < means[1] < means[2]  # left/top, centre, right/bottom
    assert crops[0].select(axis, 0).float().mean() == 0 and crops[2].select(axis, -1).float().mean() == 255
    assert TestClipTransform(120, 1)(frames).shape == (1, 3, 2, 120, 120)
