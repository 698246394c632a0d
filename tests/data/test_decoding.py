"""Decoders: decord/PyAV parity, decode-time resize, rotation, skippable frames, and every kind of bad file."""
import av
import numpy as np
import pytest
from conftest import moving_frames, write_h264

from rs3d.data.decoders import PyAVReader, VideoDecodeError, open_video, probe_video
from rs3d.data.decoders.probe import reference_step
from rs3d.data.prep.reencode import reencode_video

# One non-reference B-frame between reference frames, as prepare_dataset.py encodes (minus its GOP length).
SKIPPABLE_ODD = "bframes=1:b-adapt=0:b-pyramid=none:open-gop=0:scenecut=0"


@pytest.mark.parametrize("kind", ["good", "good2", "fps15"])
def test_decord_and_pyav_give_identical_frames(video_dir, kind):
    path = video_dir[kind]
    a, b = open_video(path, "decord"), open_video(path, "pyav")
    assert a.info.num_frames == b.info.num_frames and a.info.fps == b.info.fps
    n = a.info.num_frames
    indices = [n - 1, 0, 3, 17, 18, n // 2, n - 2]  # unsorted, with a backward jump: PyAV must seek
    fa, fb = a.get_frames(indices), b.get_frames(indices)
    assert fa.shape == (len(indices), 48, 64, 3) and fa.dtype == np.uint8
    np.testing.assert_array_equal(fa, fb)
    assert not np.array_equal(fa[1], fa[2])  # distinct frames, so a wrong index would fail


def test_probe_reports_stream_facts(video_dir):
    info = probe_video(video_dir["fps15"])
    assert (info.num_frames, info.fps, info.height, info.width, info.codec) == (30, 15.0, 48, 64, "h264")


def test_decode_time_resize(video_dir):
    import torch
    from torchvision.transforms.v2 import functional as F

    full = open_video(video_dir["good"], "pyav").get_frames([5])
    # decord builds fail on some small widths (16, 24, 48; decord2 also 32), so 40 here; the datasets
    # fall back to PyAV whenever decord fails.
    small = {b: open_video(video_dir["good"], b, size=(30, 40)).get_frames([5]) for b in ("decord", "pyav")}
    assert small["decord"].shape == small["pyav"].shape == (1, 30, 40, 3)
    # Both use FFmpeg scalers (with different filters): similar pixels, and close to a torch resize of the full
    # frame (the test texture has hard 4-pixel edges, so "close" is relative to its spread of ~58).
    assert np.abs(small["decord"].astype(float) - small["pyav"]).mean() < 12
    reference = F.resize(torch.from_numpy(full).permute(0, 3, 1, 2), [30, 40], antialias=True)
    reference = reference.permute(0, 2, 3, 1).numpy().astype(float)
    spread = np.abs(full - full.mean()).mean()
    assert np.abs(reference - small["decord"]).mean() < 0.4 * spread


def test_rotated_video_is_decoded_upright(video_dir):
    plain = open_video(video_dir["rotated"], "pyav", info=None)  # probe inside
    info = probe_video(video_dir["rotated"])
    assert info.rotation == 90 and (info.height, info.width) == (64, 48)
    reader = open_video(video_dir["rotated"], "decord", info=info)  # routed to PyAV
    frames = reader.get_frames([0, 4])
    assert frames.shape == (2, 64, 48, 3)
    np.testing.assert_array_equal(frames, plain.get_frames([0, 4]))
    # The same reader told there is no rotation returns the stored (landscape) frames; players show
    # them turned 90 degrees counter-clockwise.
    stored = open_video(video_dir["rotated"], "pyav", info=info.__class__(20, 30.0, 48, 64, 0)).get_frames([0, 4])
    assert stored.shape == (2, 48, 64, 3)
    np.testing.assert_array_equal(np.rot90(stored, k=1, axes=(1, 2)), frames)


def test_open_video_routes_a_video_by_the_backends_capabilities(video_dir, monkeypatch):
    from types import SimpleNamespace

    from rs3d.data.decoders import Capabilities, DecordReader, registry

    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))  # leave the real registry as it was
    opened = []

    @registry.register_backend("local_plain", Capabilities(seek=True))
    class LocalPlain:
        def __init__(self, path, size=None, info=None):
            opened.append(path)

    assert isinstance(open_video(video_dir["good"], "local_plain"), LocalPlain) and opened == [video_dir["good"]]
    rotated = probe_video(video_dir["rotated"])
    assert isinstance(open_video(video_dir["rotated"], "local_plain", info=rotated), PyAVReader)  # turns it upright
    monkeypatch.setattr(registry, "paths", SimpleNamespace(is_local=lambda path: False))  # as if on another store
    assert isinstance(open_video(video_dir["good"], "local_plain"), DecordReader)  # takes file objects
    assert opened == [video_dir["good"]]
    assert registry.default_backends() == ("decord", "pyav")  # registered, but only used when named


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("kind", ["missing", "empty", "text", "audio_only", "truncated"])
def test_unopenable_files_raise_one_error_type(video_dir, backend, kind):
    with pytest.raises(VideoDecodeError) as err:
        reader = open_video(video_dir[kind], backend)
        reader.get_frames([0, reader.info.num_frames - 1])
    assert video_dir[kind] in str(err.value) and err.value.reason


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_damaged_stream_raises(video_dir, backend):
    with pytest.raises(VideoDecodeError):
        reader = open_video(video_dir["damaged"], backend)
        reader.get_frames(list(range(reader.info.num_frames)))


def test_index_past_the_end_raises(video_dir):
    for backend in ("decord", "pyav"):
        with pytest.raises(VideoDecodeError, match="past the end|ended"):
            open_video(video_dir["short"], backend).get_frames([0, 12])


def test_pyav_reads_the_head_of_a_truncated_faststart_file(video_dir):
    path = video_dir["truncated_faststart"]
    reader = open_video(path, "pyav")
    with pytest.raises(VideoDecodeError) as err:
        reader.get_frames([0, reader.info.num_frames - 1])
    head = err.value.decodable_frames
    assert head and 10 < head < reader.info.num_frames
    frames = open_video(path, "pyav").get_frames(list(range(0, head, 5)))
    assert frames.shape[0] == len(range(0, head, 5))
    raw = []  # PyAV's own decode loop, independent of rs3d's reader: the same head, the same pixels
    with av.open(path) as container:
        try:
            for frame in container.decode(video=0):
                raw.append(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError:
            pass
    assert head <= len(raw) <= head + 1  # rs3d's head may leave out the last frame PyAV still returned
    np.testing.assert_array_equal(frames, np.stack(raw[0:head:5]))
    try:  # decord 0.6.0 refuses to open this file; decord2 3.x opens it and must agree on the head
        same = open_video(path, "decord").get_frames(list(range(0, head, 5)))
    except VideoDecodeError:
        return
    np.testing.assert_array_equal(same, frames)


def test_decord_reader_takes_known_facts_without_decoding(video_dir):
    info = probe_video(video_dir["good"])
    reader = open_video(video_dir["good"], "decord", info=info)
    assert (reader.info.height, reader.info.width, reader.info.num_frames) == (info.height, info.width,
                                                                               info.num_frames)
    frames = reader.get_frames([0, 3])
    assert frames.shape == (2, info.height, info.width, 3)
    assert np.array_equal(frames, open_video(video_dir["good"], "decord").get_frames([0, 3]))


def test_prepared_videos_decode_even_frames_without_the_odd_ones(video_dir, tmp_path):
    prepared = str(tmp_path / "prepared.mp4")
    reencode_video(video_dir["good"], prepared, keyframe_interval=16)
    info = probe_video(prepared)
    assert info.ref_step == 2 and probe_video(video_dir["good"]).ref_step == 1  # x264 defaults: adaptive B-frames
    reader = open_video(prepared, "decord", info=info)
    assert isinstance(reader, PyAVReader)  # decord cannot leave frames undecoded
    reference = open_video(prepared, "decord", info=probe_video(video_dir["good"]))  # a real decord reader
    even = list(range(18, 50, 2))
    np.testing.assert_array_equal(reader.get_frames(even), reference.get_frames(even))
    assert reader.frames_decoded == 17 + 2  # from the keyframe at 16: 16, 18, ..., 48 and P-frames 31, 47 (GOP ends)
    odd = [19, 21, 40]
    np.testing.assert_array_equal(reader.get_frames(odd), reference.get_frames(odd))
    assert reader.frames_decoded == 13 + 1 + 2  # the even frames 16-40, the P-frame 31 and the two wanted B-frames


def test_pyav_leaves_unwanted_non_reference_frames_undecoded_on_any_layout(video_dir, tmp_path):
    # x264's defaults (adaptive B-frames with a pyramid), and an odd GOP that flips which parity the B-frames have.
    odd_gop = write_h264(str(tmp_path / "odd_gop.mp4"), moving_frames(60), x264_params=f"keyint=15:{SKIPPABLE_ODD}")
    for path in (video_dir["good"], odd_gop):
        with av.open(path) as container:  # packets in display order: (pts, keyframe?)
            packets = sorted((p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size)
        keyframes = [index for index, (_, key) in enumerate(packets) if key]
        reader, reference = PyAVReader(path), open_video(path, "decord")
        for indices in (list(range(20, 50, 2)), list(range(21, 50, 2)), [41, 5, 40]):
            np.testing.assert_array_equal(reader.get_frames(indices), reference.get_frames(indices))
            start = max(k for k in keyframes if k <= min(indices))
            assert len(set(indices)) <= reader.frames_decoded < max(indices) + 1 - start, (path, indices)


def test_reference_step_needs_x264s_fixed_single_b_frame_layout(tmp_path):
    fixed = {"bframes": "1", "b_pyramid": "0", "b_adapt": "0", "open_gop": "0", "scenecut": "0", "interlaced": "0",
             "keyint": "16"}
    assert reference_step(fixed) == 2
    for key, value in [("bframes", "3"), ("b_pyramid", "2"), ("b_adapt", "1"), ("open_gop", "1"),
                       ("scenecut", "40"), ("keyint", "15"), ("keyint", "infinite"), ("interlaced", "tff")]:
        assert reference_step({**fixed, key: value}) == 1, key
    assert reference_step({}) == 1  # not x264
    path = write_h264(str(tmp_path / "k16.mp4"), moving_frames(20), x264_params=f"keyint=16:{SKIPPABLE_ODD}")
    assert probe_video(path).ref_step == 2


@pytest.mark.parametrize("container_format,suffix", [("avi", "avi"), ("mpegts", "ts"), ("h264", "h264"),
                                                     ("matroska", "mkv")])
def test_pyav_reads_containers_with_untrustworthy_timestamps(tmp_path, container_format, suffix):
    # AVI stores no presentation times (B-frames come out with out-of-order ones), MPEG-TS seeks miss the keyframe,
    # raw H.264 has no timestamps and cannot seek: the reader then numbers frames by counting from the start.
    path = str(tmp_path / f"b_frames.{suffix}")
    frames = moving_frames(60)
    with av.open(path, "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=30)  # x264's defaults: B-frames
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    with av.open(path) as container:
        every = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    indices = [49, 11, 12, 13, 31, 47]
    np.testing.assert_array_equal(PyAVReader(path).get_frames(indices), np.stack([every[i] for i in indices]))
