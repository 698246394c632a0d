"""Smoke test of the data benchmark: every measurement runs on two tiny videos and fills every table row."""
import math

import pytest

from rs3d.studies.data_pipeline import (
    ROW_ORDER,
    BenchSetting,
    PytorchvideoPeer,
    Report,
    ensure_videos,
    keyframe_count,
    measure_test,
    measure_train,
    render_video,
)

TINY = BenchSetting(num_frames=8, sampling_rate=2, train_crop=32, test_crop=32, test_clips=2, test_crops=3)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> tuple[list[str], list[str]]:
    """Two generated 64x48, 90-frame videos (GOP 250) and their re-encoded copies (GOP 16)."""
    root = tmp_path_factory.mktemp("benchmark_data")
    return ensure_videos(root, 2, seconds=3.0, height=48, width=64, log=lambda text: None)


def test_generated_videos_are_moving_h264(videos):
    originals, prepared = videos
    assert keyframe_count(originals[0]) == 1 and keyframe_count(prepared[0]) == 6  # 90 frames, GOP 250 vs 16
    frames = render_video(0, num_frames=3, height=48, width=64)
    assert frames.shape == (3, 48, 64, 3) and frames.std() > 20 and (frames[0] != frames[2]).mean() > 0.5
    assert ensure_videos(originals[0].rsplit("/", 2)[0], 2, height=48, width=64) == videos  # reused, not rewritten


@pytest.mark.slow
def test_every_measurement_fills_the_table(videos):
    originals, prepared = videos
    report = Report()
    pytorchvideo = PytorchvideoPeer(originals, setting=TINY)
    try:
        report.add(*measure_train(originals, prepared, clips=3, warmup=1, setting=TINY, pytorchvideo=pytorchvideo))
    finally:
        pytorchvideo.close()
    assert report.timings["3"].clips == 3
    report.add(*measure_test(originals, videos=1, setting=TINY))
    assert set(report.timings) == set(ROW_ORDER)
    rows = report.rows()
    assert [row[0] for row in rows] == [f"({key})" for key in ROW_ORDER]
    for row in rows:
        numbers = [float(v) for v in row[3:]]  # clips/s, ms/clip, CPU ms/clip, x (2), x (2) CPU, timed
        assert len(numbers) == 6 and all(math.isfinite(v) and v > 0 for v in numbers), row
    assert report.timings["4a"].clips == report.timings["4b"].clips == 6  # 2 clips x 3 crops
    table = report.table().splitlines()
    assert len(table) == 2 + len(ROW_ORDER) and all(line.startswith(f"| ({key})") for line, key in
                                                     zip(table[2:], ROW_ORDER))
    checks = report.checks()
    assert [c[0][:4] for c in checks] == ["(1) ", "(1) ", "(4a)", "(5c)", "(1d)", "(5d)"]
    assert all(math.isfinite(wall) and math.isfinite(cpu) and verdict in ("PASS", "FAIL", "MIXED")
               for _, wall, cpu, _, verdict in checks)
