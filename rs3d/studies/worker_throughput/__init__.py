"""Data-pipeline throughput per DataLoader worker (``tools/benchmark_data.py``): the rs3d datasets against raw decord, pytorchvideo and per-view
decoding, on Kinetics-like videos as stored (GOP 250) and as prepared by :func:`rs3d.data.prep.reencode.reencode_video`.

Every measurement is single-threaded (``torch.set_num_threads(1)``, decord ``num_threads=1``), as one worker runs.
The machine is noisy, so pipelines that are compared run side by side: the train pipelines take turns clip by clip
(rs3d, then raw decord on the frame indices rs3d just decoded, then both again on the prepared copy of the same
video, then one pytorchvideo clip), as do the two test pipelines video by video. pytorchvideo lives in a spawned
process, because its decord backend switches decord's global bridge to torch at import, and is stepped from here.

How identical frame indices are guaranteed: the rs3d train dataset is a thin subclass that records the sorted
unique frame indices it hands to the decoder (the clip chosen by ``random_start`` + ``clip_indices``); the raw
decord row then opens a fresh ``decord.VideoReader`` and calls ``get_batch`` on exactly those indices. The rs3d
train dataset draws every sample from a seed that depends only on (seed, epoch, index), so the original and
prepared streams, given the same (epoch, index) items, draw the same crop boxes, starts and augmentations on the
two copies of each video.

The rs3d train rows know every video's stream facts, as the loaders do when check_dataset.py or prepare_dataset.py
has written the split's metadata file; row (1c) repeats row (1) with the per-worker probe cache cleared before every
sample, as a worker without that file sees each video on its first visit. The test rows probe cold.

Layout: :mod:`.timing` (settings, timings, one-thread measurement), :mod:`.videos` (generated Kinetics-like videos
and their prepared copies), :mod:`.rows` (the rs3d rows and the decoders they are compared with),
:mod:`.pytorchvideo_peer` (row (3) in a spawned process), :mod:`.report` (the table and the targets).
"""
from rs3d.studies.worker_throughput.pytorchvideo_peer import PytorchvideoPeer
from rs3d.studies.worker_throughput.report import ROW_ORDER, Report
from rs3d.studies.worker_throughput.rows import measure_test, measure_train, per_view_decode
from rs3d.studies.worker_throughput.timing import BenchSetting, Stopwatch, Timing
from rs3d.studies.worker_throughput.videos import ensure_videos, keyframe_count, textured_video

__all__ = [
    "ROW_ORDER",
    "BenchSetting",
    "PytorchvideoPeer",
    "Report",
    "Stopwatch",
    "Timing",
    "ensure_videos",
    "keyframe_count",
    "measure_test",
    "measure_train",
    "per_view_decode",
    "textured_video",
]
