"""Frame i is the i-th frame shown, on every backend and whatever else a request asks for: variable-frame-rate
videos (PyAV numbered frames by timestamp x average fps) and MP4s whose edit list hides pre-roll frames (decord
repeated the last frame shown past the end). The reference is PyAV's own full decode, in display order."""
from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import moving_frames

from rs3d.data.annotations import VideoRecord
from rs3d.data.clip_sampling import ClipSpec
from rs3d.data.dataset import TestClipDataset
from rs3d.data.decoders import PyAVReader, VideoDecodeError, open_video, probe_video
from rs3d.data.transforms import TestClipTransform


def write_timed(path: str, frames: np.ndarray, pts: list[int], time_base: Fraction, rotation: int = 0,
                x264_params: str | None = None) -> str:
    """H.264 with the given presentation timestamps (x264's defaults: B-frames, unless told otherwise)."""
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        stream.time_base = time_base
        if x264_params:
            stream.codec_context.options = {"x264-params": x264_params}
        if rotation:
            stream.set_display_rotation(rotation)
        for frame, t in zip(frames, pts):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = t, time_base
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return path


def displayed(path: str, rotation: int = 0) -> np.ndarray:
    """Every frame shown, in display order, upright (PyAV's plain decode loop)."""
    with av.open(path) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return np.rot90(frames, k=rotation // 90, axes=(1, 2)) if rotation else frames


def phone_pts(n: int) -> list[int]:
    """A 30 fps phone clock (90 kHz) that drops a frame after every 7th: gaps, so time x average fps drifts."""
    pts, t = [], 0
    for i in range(n):
        pts.append(t)
        t += 6000 if i % 7 == 6 else 3000
    return pts


@pytest.fixture(scope="module")
def vfr_videos(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("vfr")
    frames = moving_frames(90, seed=7)
    return {
        # Rotated, so every backend sends it to PyAV; a keyframe every 30 frames, so the reader has to seek.
        "phone": write_timed(str(root / "phone.mp4"), frames, phone_pts(90), Fraction(1, 90000), rotation=90,
                             x264_params="keyint=30:min-keyint=30:scenecut=0"),
        # Duplicated-looking steps and long gaps (1/30 s ticks), Matroska, no B-frames.
        "gaps": write_timed(str(root / "gaps.mkv"), frames[:40], [i + (i // 5) ** 2 for i in range(40)],
                            Fraction(1, 30), x264_params="bframes=0:keyint=12:min-keyint=12:scenecut=0"),
    }


@pytest.mark.parametrize("kind", ["phone", "gaps"])
def test_pyav_gives_the_ith_frame_shown_on_variable_frame_rate_video(vfr_videos, kind):
    path = vfr_videos[kind]
    info = probe_video(path)
    reference = displayed(path, info.rotation)
    assert len(reference) == info.num_frames
    n = info.num_frames
    requests = [[s, s + 2, s + 4, s + 6] for s in range(0, n - 6, 3)] + [[s, s + 5] for s in range(0, n - 5, 4)]
    requests += [[n - 1, 0, 17, 3], [n // 2]]
    for indices in requests:
        reader = open_video(path, "pyav", info=info)
        assert isinstance(reader, PyAVReader)
        np.testing.assert_array_equal(reader.get_frames(indices), reference[indices], err_msg=str(indices))
        reader.close()


def test_pyav_still_seeks_on_variable_frame_rate_video(vfr_videos):
    path = vfr_videos["phone"]
    info = probe_video(path)
    reader = open_video(path, "pyav", info=info)
    indices = [70, 72, 74, 76]
    np.testing.assert_array_equal(reader.get_frames(indices), displayed(path, info.rotation)[indices])
    assert reader.frames_decoded <= 76 - 60 + 1  # from the keyframe at 60, not from the start


@pytest.fixture(scope="module")
def edit_list_video(tmp_path_factory) -> str:
    """An MP4 as a stream-copy cut leaves it: 40 frames stored, the first 5 (negative timestamps) hidden by its edit
    list, so the header says 40 and 35 are shown."""
    path = str(tmp_path_factory.mktemp("edit") / "cut.mp4")
    write_timed(path, moving_frames(40, seed=8), [i - 5 for i in range(40)], Fraction(1, 30))
    with av.open(path) as container:
        assert container.streams.video[0].frames == 40
    return path


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_frames_past_the_last_shown_are_reported_not_repeated(edit_list_video, backend):
    reference = displayed(edit_list_video)
    assert len(reference) == 35
    info = probe_video(edit_list_video)
    assert info.num_frames == 40  # the header's count
    reader = open_video(edit_list_video, backend, info=info)
    assert reader.info.num_frames == 40
    inside = [0, 1, 10, 33, 34]
    np.testing.assert_array_equal(reader.get_frames(inside), reference[inside])
    with pytest.raises(VideoDecodeError) as err:
        open_video(edit_list_video, backend, info=info).get_frames([30, 32, 34, 36, 38])
    assert err.value.decodable_frames == len(reference)


def test_test_views_of_a_cut_video_are_the_same_on_every_backend(edit_list_video):
    views = {}
    for backends in (("decord",), ("pyav",)):
        dataset = TestClipDataset([VideoRecord(edit_list_video, 0)], ClipSpec(8, 2), TestClipTransform(32, 1), 3,
                                  backends=backends)
        sample = dataset[0]
        assert not sample["failures"]
        views[backends] = sample["video"].float()  # (views, 3, T, H, W)
    # The backends resize with different FFmpeg scalers: the same frame differs by ~7 grey levels on average, two
    # frames 2 apart by ~33 (the texture pans 2 pixels).
    same = (views[("decord",)] - views[("pyav",)]).abs().mean(dim=(1, 3, 4))
    assert same.max() < 15, same
    steps = (views[("decord",)][:, :, 1:] - views[("decord",)][:, :, :-1]).abs().mean(dim=(1, 3, 4))
    assert steps.min() > 15, steps  # no frozen frames: the last view ends on the last frame shown
