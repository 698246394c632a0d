"""``rs3d-predict`` / ``tools/predict.py``: top-k classes for video files, directories and globs.

Unreadable videos are reported and skipped; the others' results are still printed and written. Exit status 0
when at least one video was read, 1 when none could be, 2 for a usage or input error.

Videos, the checkpoint, --output and --render may be on any iopath handler (``rs3d.utils.paths``); globs are
expanded on local disk only (iopath cannot match patterns)."""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import sys

from rs3d.commands import base as cli
from rs3d.commands.base import UsageError
from rs3d.data.decoders import VideoDecodeError
from rs3d.inference.predictor import Prediction, Predictor
from rs3d.inference.render import render_video
from rs3d.inference.windows import label_window_sec
from rs3d.utils import paths
from rs3d.utils.atomic import atomic_open
from rs3d.utils.class_folders import list_videos
from rs3d.utils.writable import check_output_file, check_output_folder


def expand_paths(items: list[str]) -> list[str]:
    """Files as given, directories searched recursively for videos (``rs3d.utils.class_folders``' extensions, as
    folder datasets), local globs expanded; order kept."""
    videos: list[str] = []
    for item in items:
        if paths.isdir(item):
            videos += [os.path.join(item, rel) for rel in list_videos(item)]
        elif paths.is_local(item) and any(ch in item for ch in "*?["):
            videos += sorted(glob.glob(item, recursive=True))
        else:
            videos.append(item)
    return videos


def write_results(path: str, predictions: list[Prediction]) -> None:
    """JSON (list of objects) or CSV (one row per video and rank; timeline rows carry their window)."""
    if not path.endswith((".json", ".csv")):
        raise UsageError(f"{path}: --output must end in .json or .csv")
    with atomic_open(path) as f:
        if path.endswith(".json"):
            json.dump([p.to_dict() for p in predictions], f, indent=1)
        elif path.endswith(".csv"):
            writer = csv.writer(f)
            writer.writerow(["video", "window_start", "window_end", "rank", "class", "prob", "error"])
            for p in predictions:
                if p.error:
                    writer.writerow([p.path, "", "", "", "", "", p.error])
                for rank, (name, prob) in enumerate(p.top, start=1):
                    writer.writerow([p.path, "", "", rank, name, f"{prob:.6f}", ""])
                for w in p.timeline:
                    for rank, top in enumerate(w["top"], start=1):
                        writer.writerow([p.path, w["start"], w["end"], rank, top["name"], f"{top['prob']:.6f}", ""])


def render_names(videos: list[str]) -> list[str]:
    """``<name>_labels.mp4`` per video. When two videos share a name, every video keeps its folders below the
    videos' common folder (``a/clip.mp4``, ``b/clip.mp4`` -> ``a/clip_labels.mp4``, ``b/clip_labels.mp4``), and
    ``clip.mp4`` beside ``clip.avi`` keeps its extension in the name (``clip_mp4_labels.mp4``)."""
    stems = [os.path.splitext(os.path.basename(v))[0] for v in videos]
    if len(set(stems)) == len(stems):
        return [stem + "_labels.mp4" for stem in stems]
    parts = [(os.path.abspath(v) if paths.is_local(v) else v).split("/") for v in videos]
    common = 0
    while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    names = ["/".join(part for part in p[common:] if part not in ("", ".", "..")).replace(":", "_") for p in parts]
    stems = [os.path.splitext(name)[0] for name in names]
    taken = {stem for stem in stems if stems.count(stem) > 1}
    return [stem + (os.path.splitext(name)[1].replace(".", "_") if stem in taken else "") + "_labels.mp4"
            for stem, name in zip(stems, names)]


def render_all(target: str, predictions: list[Prediction], labels: list[Prediction] | None = None) -> None:
    """Render every readable video: to ``target`` itself for a single .mp4, else into the folder ``target``
    (:func:`render_names`; a video given twice is rendered once). The labels follow ``labels``' windows (the
    same videos in window mode), else each prediction's own timeline, else its whole-video top-k."""
    timelines = {p.path: p.timeline for p in (labels or []) if not p.error}
    readable = list({p.path: p for p in predictions if not p.error}.values())
    single = target.endswith(".mp4") and len(predictions) == 1
    if not single:
        paths.makedirs(target)
    names = render_names([p.path for p in readable])
    for p, name in zip(readable, names):
        dst = target if single else os.path.join(target, name)
        try:
            if not single:
                paths.makedirs(os.path.dirname(dst))
            frames = render_video(p.path, dst, timelines.get(p.path, p.timeline), p.top)
            print(f"rendered {dst} ({frames} frames)")
        except VideoDecodeError as exc:
            print(f"{p.path}: not rendered ({exc.reason})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rs3d-predict", description=__doc__)
    parser.add_argument("paths", nargs="*", metavar="PATH_OR_KEY_VALUE",
                        help="video files, directories or globs, then optional config overrides as KEY VALUE pairs "
                             "(e.g. TEST.NUM_ENSEMBLE_VIEWS 4), as every rs3d command takes them")
    parser.add_argument("--checkpoint", required=True, help="model_final.pyth or a training checkpoint")
    parser.add_argument("--cfg", help="config file (default: the config stored in the checkpoint)")
    parser.add_argument("--class-names", help="classnames.json, for checkpoints that carry no class names "
                        "(e.g. PySlowFast / pytorchvideo model-zoo files)")
    parser.add_argument("--topk", type=int, default=5, help="classes listed per video (default 5)")
    parser.add_argument("--window-sec", type=float, help="sliding windows of this length: a label timeline")
    parser.add_argument("--stride-sec", type=float, help="window stride (default: half a window)")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (CUDA when available)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass")
    parser.add_argument("--output", help="write results to a .json or .csv file")
    parser.add_argument("--render", help="write a copy of the video with the current top-3 labels drawn: an .mp4 "
                        "file for one video, else a folder (<name>_labels.mp4 per video; videos of the same name from "
                        "different folders keep those folders)")
    parser.add_argument("--stream", metavar="SOURCE",
                        help="a live source instead of files: a webcam index (0), or a stream URL or file FFmpeg can "
                             "read (rtsp://, http://, udp://, .m3u8): prints a rolling prediction every --stride-sec "
                             "seconds (default 1) of the last clip")
    parser.add_argument("--max-sec", type=float, help="with --stream: stop after this many seconds of the stream")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY VALUE",
                        help="config overrides before the paths (older spelling; trailing KEY VALUE pairs after the "
                             "paths do the same)")
    args = parser.parse_args(argv)
    check_options(args)
    args.paths, trailing = cli.split_overrides(args.paths)
    args.opts = [*args.opts, *trailing]
    if args.output and not args.output.endswith((".json", ".csv")):
        raise UsageError(f"{args.output}: --output must end in .json or .csv")  # before any work is done
    if args.output:
        check_output_file(args.output, "--output")
    if args.render:
        (check_output_file if args.render.endswith(".mp4") else check_output_folder)(args.render, "--render")
    if args.stream:
        return predict_stream(args)
    if not args.paths:
        raise UsageError("give video files, folders or globs, or --stream SOURCE")
    videos = expand_paths(args.paths)
    if not videos:
        print("error: no videos found in " + " ".join(args.paths), file=sys.stderr)
        return 2
    predictor = Predictor(args.cfg, args.checkpoint, args.device, args.topk, args.batch_size, args.opts,
                          args.class_names)
    predictions = predictor.predict_many(videos, args.window_sec, args.stride_sec)
    for p in predictions:
        if p.error:
            print(f"{p.path}: skipped ({p.error})")
            continue
        print(f"{p.path}: " + ", ".join(f"{name} {prob:.3f}" for name, prob in p.top))
        for w in p.timeline:
            print(f"  {w['start']:8.2f}-{w['end']:8.2f}s  " +
                  ", ".join(f"{t['name']} {t['prob']:.3f}" for t in w["top"][:3]))
    if args.output:
        write_results(args.output, predictions)
    if args.render:  # without --window-sec the answer stays the multi-view one; the drawn labels follow windows
        labels = None if args.window_sec else predictor.predict_many(
            [p.path for p in predictions if not p.error], label_window_sec(predictor.spec), args.stride_sec)
        render_all(args.render, predictions, labels)
    failed = sum(1 for p in predictions if p.error)
    if failed:
        print(f"{failed} of {len(predictions)} videos could not be read", file=sys.stderr)
    return 1 if failed == len(predictions) else 0


def check_options(args: argparse.Namespace) -> None:
    """Numbers that cannot work, and a device that is not there, as one line before any model is loaded."""
    cli.check_prediction_options(args, ("window_sec", "stride_sec", "max_sec"))


def predict_stream(args: argparse.Namespace) -> int:
    """``--stream``: one line per prediction as the stream plays; ``--output`` gets them all (.json)."""
    from rs3d.inference.stream import rolling_predictions

    if args.paths:
        raise UsageError("--stream takes no video paths (config overrides come as KEY VALUE pairs)")
    if args.output and not args.output.endswith(".json"):
        raise UsageError(f"{args.output}: with --stream, --output must end in .json")
    stride = 1.0 if args.stride_sec is None else args.stride_sec
    predictor = Predictor(args.cfg, args.checkpoint, args.device, args.topk, args.batch_size, args.opts,
                          args.class_names)
    results = []
    try:
        for p in rolling_predictions(predictor, args.stream, stride, args.max_sec):
            results.append(p)
            print(f"{p.time:8.2f}s  " + ", ".join(f"{name} {prob:.3f}" for name, prob in p.top), flush=True)
    except VideoDecodeError as exc:
        raise UsageError(f"{args.stream}: {exc.reason}") from None
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    if args.output:
        with atomic_open(args.output) as f:
            json.dump([p.to_dict() for p in results], f, indent=1)
    if not results:
        print(f"{args.stream}: ended before one clip ({predictor.spec.num_frames} frames) was full", file=sys.stderr)
        return 1
    return 0


def console_main() -> None:
    """Entry point of the ``rs3d-predict`` console command."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
