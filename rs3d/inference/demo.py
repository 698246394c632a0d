"""``rs3d-demo``: a local web page (Gradio) where a user drops or records a video and sees its top classes with
bars, a per-window timeline (plot and table) and the video with the current labels drawn on it.

The work is plain Python, testable without a browser (:func:`analyse`); :func:`build_app` puts it on a page.
Gradio is an optional extra (``pip install rs3d[demo]``) and is imported only when a page is built.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

from matplotlib.figure import Figure

from rs3d.data.decoders import VideoDecodeError
from rs3d.inference.predictor import Prediction, Predictor
from rs3d.inference.render import render_video
from rs3d.inference.windows import label_window_sec
from rs3d.utils.errors import UserInputError

#: Classes drawn as lines on the timeline plot (the video's best ones).
PLOT_CLASSES = 5
#: A rendered video is kept this long for the page to fetch (Gradio copies it into its own cache).
KEEP_RENDERS_SEC = 3600.0


class DemoUnavailableError(UserInputError):
    """The demo's optional dependency is not installed."""


@dataclass
class DemoResult:
    """What the page shows for one video: top-k {class: probability} (the bars), the per-window timeline as table
    rows and as a plot (None for a video of one window), and the rendered overlay video."""

    labels: dict[str, float]
    timeline: list[list] = field(default_factory=list)
    figure: Figure | None = None
    rendered: str | None = None


TIMELINE_HEADERS = ["start (s)", "end (s)", "1st", "2nd", "3rd"]


def timeline_rows(prediction: Prediction) -> list[list]:
    """One table row per window: start and end seconds, then its top-3 classes as 'name prob'."""
    rows = []
    for window in prediction.timeline:
        tops = [f"{t['name']} {t['prob']:.2f}" for t in window["top"][:3]]
        rows.append([window["start"], window["end"], *tops, *[""] * (3 - len(tops))])
    return rows


def timeline_figure(prediction: Prediction, classes: list[str], class_names: list[str]) -> Figure | None:
    """Probability of each of ``classes`` in every window against the window's centre; None below two windows."""
    if prediction.window_probs is None or len(prediction.timeline) < 2:
        return None
    centres = [(w["start"] + w["end"]) / 2 for w in prediction.timeline]
    figure = Figure(figsize=(7, 3), layout="constrained")
    axes = figure.add_subplot()
    for name in classes:
        axes.plot(centres, prediction.window_probs[:, class_names.index(name)].tolist(), marker="o", label=name)
    axes.set(xlabel="time (s, window centre)", ylabel="probability", ylim=(0, 1))
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    axes.grid(alpha=0.3)
    return figure


def analyse(predictor: Predictor, video: str, out_dir: str, window_sec: float | None = None,
            stride_sec: float | None = None, render: bool = True) -> DemoResult:
    """The page's answer for one video file: the multi-view top-k (as ``rs3d-predict VIDEO`` prints it), the
    sliding-window timeline (windows of about one clip unless ``window_sec``; stride half a window unless
    ``stride_sec``) and, with ``render``, ``out_dir/<name>_labels.mp4`` as ``rs3d-predict --render`` draws it.
    Raises VideoDecodeError for a video that cannot be read."""
    whole = predictor.predict(video)
    if whole.error:
        raise VideoDecodeError(video, whole.error)
    window_sec = window_sec or label_window_sec(predictor.spec)
    windows = predictor.predict(video, window_sec, stride_sec)
    if windows.error:
        raise VideoDecodeError(video, windows.error)
    result = DemoResult(labels=dict(whole.top), timeline=timeline_rows(windows))
    result.figure = timeline_figure(windows, [name for name, _ in whole.top[:PLOT_CLASSES]], predictor.class_names)
    if render:
        os.makedirs(out_dir, exist_ok=True)
        result.rendered = os.path.join(out_dir, os.path.splitext(os.path.basename(video))[0] + "_labels.mp4")
        render_video(video, result.rendered, windows.timeline, whole.top)
    return result


def drop_old_renders(work_dir: str, max_age_sec: float = KEEP_RENDERS_SEC) -> None:
    """Remove request folders under ``work_dir`` older than ``max_age_sec`` so a long-running page stays small."""
    now = time.time()
    for entry in os.scandir(work_dir):
        if entry.is_dir() and now - entry.stat().st_mtime > max_age_sec:
            shutil.rmtree(entry.path, ignore_errors=True)


def require_gradio():
    """The gradio module, or a one-line error that says how to install it."""
    try:
        import gradio
    except ImportError:
        raise DemoUnavailableError("rs3d-demo needs Gradio: pip install rs3d[demo]") from None
    return gradio


def build_app(predictor: Predictor, work_dir: str, window_sec: float | None = None,
              stride_sec: float | None = None):
    """A ``gradio.Blocks`` page around :func:`analyse`; renders go to per-request folders under ``work_dir``."""
    gr = require_gradio()

    def run(video: str | None):
        if not video:
            raise gr.Error("Drop a video file or record one first.")
        drop_old_renders(work_dir)
        try:
            result = analyse(predictor, video, tempfile.mkdtemp(dir=work_dir), window_sec, stride_sec)
        except VideoDecodeError as exc:  # the upload's name, not the server's path to its copy
            name = os.path.basename(video)
            raise gr.Error(f"{name}: {exc.reason.replace(video, name)}", print_exception=False) from None
        return result.labels, result.figure, result.timeline, result.rendered

    with gr.Blocks(title="rs3d demo", analytics_enabled=False, delete_cache=(3600, int(KEEP_RENDERS_SEC))) as app:
        gr.Markdown(f"## rs3d video classification\n{len(predictor.class_names)} classes; drop or record a video, "
                    f"then press Classify.")
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="video", sources=["upload", "webcam"], elem_id="video-in")
                button = gr.Button("Classify", variant="primary", elem_id="classify")
            with gr.Column():
                labels = gr.Label(num_top_classes=predictor.topk, label="top classes", elem_id="top-classes")
                rendered = gr.Video(label="labels drawn on the video", interactive=False, elem_id="rendered")
        plot = gr.Plot(label="timeline: probability per window", elem_id="timeline-plot")
        table = gr.Dataframe(headers=TIMELINE_HEADERS, label="timeline: top classes per window",
                             interactive=False, elem_id="timeline-table")
        button.click(run, inputs=video, outputs=[labels, plot, table, rendered])
    return app


def local_theme():
    """Gradio's default look with system fonts, so the page makes no request to a font server."""
    gr = require_gradio()
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])
