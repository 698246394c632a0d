"""FastRandAugment gives bit-identical results to torchvision's v2.RandAugment, op by op and end to end."""
from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from rs3d.data.augment import FastRandAugment, adjust_sharpness_uint8, frame_groups

OPS = list(v2.RandAugment._AUGMENTATION_SPACE)
SHAPES = [(4, 3, 37, 53), (2, 3, 224, 224)]
BINS = (0, 1, 5, 10, 15, 30)  # magnitude indices out of the default 31 bins


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run single-threaded like a DataLoader worker (and avoid thread-pool stalls on busy machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def magnitudes(op: str, height: int, width: int) -> list[float]:
    """RandAugment's magnitudes for ``op`` at several bins, negated too where RandAugment may negate them."""
    fn, signed = v2.RandAugment._AUGMENTATION_SPACE[op]
    values = fn(31, height, width)
    if values is None:
        return [0.0]
    chosen = sorted({float(values[i]) for i in BINS})
    return chosen + [-m for m in chosen if m != 0] if signed else chosen


def random_video(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Random uint8 frames whose planes span different value ranges, plus a flat and a saturated plane."""
    g = torch.Generator().manual_seed(seed)
    planes = shape[:-2]
    low = torch.randint(0, 120, planes + (1, 1), generator=g)
    span = torch.randint(1, 256, planes + (1, 1), generator=g).clamp_(max=255 - low)
    noise = torch.randint(0, 256, shape, generator=g)
    video = (low + noise * span // 255).to(torch.uint8)
    video.view(-1, *shape[-2:])[0] = 77  # one flat plane: AutoContrast and Equalize must leave it alone
    video.view(-1, *shape[-2:])[-1, ::2] = 255  # one plane with saturated rows
    return video


def apply_both(image, op: str, magnitude: float, fill=None, interpolation="nearest"):
    """The same op through torchvision's RandAugment (its own per-op step) and through FastRandAugment."""
    ref, fast = v2.RandAugment(fill=fill, interpolation=interpolation), FastRandAugment(fill=fill,
                                                                                        interpolation=interpolation)
    expected = ref._apply_image_or_video_transform(image, op, magnitude, ref.interpolation, ref._fill)
    actual = fast.apply_op(image, op, magnitude)
    return expected, actual


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", OPS)
def test_every_op_is_bit_exact(op, shape):
    video = tv_tensors.Video(random_video(shape))
    for magnitude in magnitudes(op, *shape[-2:]):
        expected, actual = apply_both(video, op, magnitude)
        assert type(actual) is type(expected) is tv_tensors.Video, (op, magnitude)
        assert actual.shape == expected.shape and actual.dtype == torch.uint8
        assert torch.equal(actual, expected), (op, magnitude, (actual.int() - expected.int()).abs().max())


@pytest.mark.parametrize("op", ["Brightness", "Color", "Contrast", "Sharpness", "AutoContrast", "Equalize", "Rotate",
                                "ShearY"])
def test_frame_groups_are_bit_exact(op, monkeypatch):
    """Kernels with clip-sized temporaries run on groups of frames (3 here, with a short last group), still exact."""
    shape = (7, 3, 37, 53)
    monkeypatch.setattr(frame_groups, "GROUP_ELEMENTS", 3 * 3 * 37 * 53)
    video = tv_tensors.Video(random_video(shape, seed=3))
    for magnitude in magnitudes(op, *shape[-2:]):
        expected, actual = apply_both(video, op, magnitude)
        assert torch.equal(actual, expected), (op, magnitude)


@pytest.mark.parametrize("op", ["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"])
@pytest.mark.parametrize("fill", [0, 7, 127.5, 200.5, (10, 20, 30), [255.0]])
def test_geometric_fills_are_bit_exact(op, fill):
    video = tv_tensors.Video(random_video((2, 3, 29, 41), seed=1))
    for magnitude in magnitudes(op, 29, 41):
        expected, actual = apply_both(video, op, magnitude, fill=fill)
        assert torch.equal(actual, expected), (op, fill, magnitude)


@pytest.mark.parametrize("op", OPS)
def test_images_and_plain_tensors_are_bit_exact(op):
    image = random_video((3, 31, 45), seed=2)
    image[1] = 77
    for wrapped in (tv_tensors.Image(image), image, image.view(1, 1, 3, 31, 45)):
        for magnitude in magnitudes(op, 31, 45)[::3]:
            expected, actual = apply_both(wrapped, op, magnitude)
            assert type(actual) is type(expected)
            assert torch.equal(actual, expected), (op, magnitude, tuple(wrapped.shape))


@pytest.mark.parametrize("op", OPS)
def test_channels_last_layout_is_bit_exact(op):
    video = tv_tensors.Video(random_video((3, 33, 47, 3), seed=6).permute(0, 3, 1, 2))  # decoded (T, H, W, C)
    for magnitude in magnitudes(op, 33, 47)[::2]:
        expected, actual = apply_both(video, op, magnitude)
        assert torch.equal(actual, expected), (op, magnitude)


@pytest.mark.parametrize("op", ["ShearX", "Rotate", "Brightness", "Equalize"])
def test_unsupported_inputs_go_to_torchvision(op):
    float_video = tv_tensors.Video(random_video((2, 3, 20, 24)).float() / 255)
    expected, actual = apply_both(float_video, op, magnitudes(op, 20, 24)[-1])
    assert torch.equal(actual, expected)
    video = tv_tensors.Video(random_video((2, 3, 20, 24)))
    expected, actual = apply_both(video, op, magnitudes(op, 20, 24)[-1], interpolation="bilinear")
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("magnitude", [10, 15])
def test_full_transform_matches_torchvision_with_the_same_seed(magnitude):
    video = tv_tensors.Video(random_video((3, 3, 48, 64), seed=3))
    for seed in range(40):
        torch.manual_seed(seed)
        expected = v2.RandAugment(num_ops=2, magnitude=magnitude)(video)
        torch.manual_seed(seed)
        actual = FastRandAugment(num_ops=2, magnitude=magnitude)(video)
        assert type(actual) is tv_tensors.Video
        assert torch.equal(actual, expected), seed


def test_every_frame_gets_the_same_op():
    frame = random_video((1, 3, 40, 56), seed=4)
    video = tv_tensors.Video(frame.expand(6, 3, 40, 56).clone())
    transform = FastRandAugment(num_ops=2, magnitude=15)
    for seed in range(40):
        torch.manual_seed(seed)
        out = transform(video)
        assert torch.equal(out, out[:1].expand_as(out)), seed


@pytest.mark.parametrize("factor", [0.0, 0.1, 0.7, 1.0, 1.3, 1.9, 3.0])
def test_adjust_sharpness_uint8_matches_torchvision(factor):
    video = random_video((2, 3, 37, 53), seed=5)
    assert torch.equal(adjust_sharpness_uint8(video, factor), F.adjust_sharpness(video, factor))
    tiny = video[..., :2, :]
    assert torch.equal(adjust_sharpness_uint8(tiny, factor), F.adjust_sharpness(tiny, factor))
