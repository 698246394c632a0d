"""Video inference with class names: ``Predictor(cfg_or_path, checkpoint).predict(path)``.

Weights, class names and (when no config is given) the config come from the checkpoint; EMA weights are
preferred. Short videos get the multi-view test (clips x crops, softmax averaged); with ``window_sec`` a video
gets a label timeline from sliding windows plus the whole-video mean. Clips of several videos are batched.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from fvcore.common.config import CfgNode

from rs3d.checkpoint import CheckpointError, load_checkpoint, load_weights
from rs3d.config import config_from_text, load_config
from rs3d.data.annotations import AnnotationError, VideoRecord, load_class_names
from rs3d.data.build import backends, clip_spec
from rs3d.data.dataset import TestClipDataset
from rs3d.data.decoders import VideoDecodeError
from rs3d.data.device_inputs import ClipNormalizer
from rs3d.data.transforms import TestClipTransform
from rs3d.evaluation import aggregate_views
from rs3d.inference.windows import sliding_windows
from rs3d.models import build_model
from rs3d.utils.precision import autocast, autocast_dtype

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """Result for one video: top-k (name, probability), all probabilities, an optional window timeline (with every
    window's probabilities in ``window_probs``, (windows, C), for plots)."""

    path: str
    top: list[tuple[str, float]] = field(default_factory=list)
    probs: torch.Tensor | None = None
    timeline: list[dict] = field(default_factory=list)
    error: str | None = None
    window_probs: torch.Tensor | None = None

    def to_dict(self) -> dict:
        out = {"video": self.path, "top": [{"name": n, "prob": round(p, 6)} for n, p in self.top]}
        if self.timeline:
            out["timeline"] = self.timeline
        if self.error:
            out["error"] = self.error
        return out


class Predictor:
    """A trained model ready for videos and clips on ``device`` ("auto": CUDA when available)."""

    def __init__(self, cfg_or_path: CfgNode | str | None, checkpoint: str, device: str = "auto", topk: int = 5,
                 max_batch: int = 16, overrides: Sequence[str] = (), class_names: Sequence[str] | str | None = None):
        state = load_checkpoint(checkpoint)
        if cfg_or_path is None:
            if "config" not in state:
                raise CheckpointError(f"{checkpoint}: holds no config; pass the config file (--cfg)")
            self.cfg = config_from_text(state["config"], f"{checkpoint} (stored config)", overrides)
        elif isinstance(cfg_or_path, str):
            self.cfg = load_config(cfg_or_path, overrides)
        else:
            self.cfg = cfg_or_path
        cfg = self.cfg
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   ("cpu" if device == "auto" else device))
        self.model = build_model(cfg)
        load_weights(self.model, checkpoint, checkpoint=state)
        on_gpu = self.device.type == "cuda"
        self.model = self.model.to(self.device, memory_format=torch.channels_last_3d if on_gpu else
                                   torch.contiguous_format).eval()
        self.amp_dtype = autocast_dtype(cfg.TRAIN.MIXED_PRECISION, self.device)
        self.normalizer = ClipNormalizer.from_config(cfg, self.device, channels_last=on_gpu)
        class_names_file = class_names if isinstance(class_names, str) else None
        if class_names_file:  # a classnames.json (list or PySlowFast {"name": index})
            class_names = load_class_names(class_names_file)
        names = class_names or state.get("class_names") or [f"class_{i}" for i in range(cfg.MODEL.NUM_CLASSES)]
        if len(names) != cfg.MODEL.NUM_CLASSES:
            source = class_names_file or ("the checkpoint's class names" if not class_names else "class_names")
            raise AnnotationError(f"{source}: {len(names)} class names for a model with {cfg.MODEL.NUM_CLASSES} "
                                  f"classes")
        self.class_names = list(names)
        self.topk, self.max_batch = min(topk, len(self.class_names)), max_batch
        self.spec = clip_spec(cfg)
        self._views = TestClipTransform(cfg.DATA.TEST_CROP_SIZE, cfg.TEST.NUM_SPATIAL_CROPS)
        self._centre = TestClipTransform(cfg.DATA.TEST_CROP_SIZE, 1)

    # ------------------------------------------------------------------ clips
    @torch.no_grad()
    def predict_clip(self, clip: torch.Tensor) -> torch.Tensor:
        """Class probabilities for uint8 clip(s) (3, T, H, W) or (N, 3, T, H, W): short side resized to the
        test crop, centre crop, normalised, one forward. Returns (C,) or (N, C)."""
        single = clip.ndim == 4
        clips = clip[None] if single else clip
        views = torch.stack([self._centre(c.permute(1, 0, 2, 3))[0] for c in clips])  # (N, 3, T, S, S)
        probs = self._forward(views).softmax(dim=1)
        return probs[0] if single else probs

    def _forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits (N, C) of uint8 clips (N, 3, T, S, S), in chunks of ``max_batch``."""
        outputs = []
        for chunk in torch.split(clips, self.max_batch):
            with autocast(self.device, self.amp_dtype):
                outputs.append(self.model(self.normalizer(chunk)).float().cpu())
        return torch.cat(outputs)

    # ------------------------------------------------------------------ videos
    def predict(self, path: str, window_sec: float | None = None, stride_sec: float | None = None) -> Prediction:
        """One video: multi-view prediction, or a sliding-window timeline when ``window_sec`` is set."""
        return self.predict_many([path], window_sec, stride_sec)[0]

    @torch.no_grad()
    def predict_many(self, paths: Sequence[str], window_sec: float | None = None,
                     stride_sec: float | None = None) -> list[Prediction]:
        """Predictions for several videos; clips from different videos share batches. A bad file gets a
        Prediction with ``error`` set and the rest go on."""
        results = [Prediction(p) for p in paths]
        pending: list[tuple[int, int, torch.Tensor]] = []  # (video, window, views)
        logits: dict[int, list[tuple[int, torch.Tensor]]] = {i: [] for i in range(len(paths))}
        windows: dict[int, list] = {}

        def flush() -> None:
            views = torch.cat([v for _, _, v in pending])
            out = self._forward(views)
            offset = 0
            for video, window, v in pending:
                logits[video].append((window, out[offset:offset + len(v)]))
                offset += len(v)
            pending.clear()

        for i, path in enumerate(paths):
            try:
                for window, views in self._clips_of(path, window_sec, stride_sec, windows, i):
                    pending.append((i, window, views))
                    if sum(len(v) for _, _, v in pending) >= self.max_batch:
                        flush()
            except VideoDecodeError as exc:
                results[i].error = exc.reason
                logger.warning("skipped %s: %s", path, exc.reason)
                logits[i] = []
        if pending:
            flush()
        for i, result in enumerate(results):
            if result.error or not logits[i]:
                continue
            per_window = [aggregate_views(v[None], self.cfg.TEST.VIEW_AGGREGATION)[0]
                          for _, v in sorted(logits[i], key=lambda item: item[0])]
            result.probs = torch.stack(per_window).mean(dim=0)
            result.top = self.top_classes(result.probs)
            if window_sec:
                result.window_probs = torch.stack(per_window)
                result.timeline = [{"start": round(float(w.start_sec), 3), "end": round(float(w.end_sec), 3),
                                    "top": [{"name": n, "prob": round(p, 6)} for n, p in self.top_classes(probs)]}
                                   for w, probs in zip(windows[i], per_window)]
        return results

    def _clips_of(self, path: str, window_sec: float | None, stride_sec: float | None, windows: dict,
                  video: int) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (window number, uint8 views) of one video; multi-view mode yields one 'window' of all views."""
        if not window_sec:
            source = TestClipDataset([VideoRecord(path, -1)], self.spec, self._views,
                                     self.cfg.TEST.NUM_ENSEMBLE_VIEWS, backends(self.cfg))
            sample = source[0]
            if not sample["valid"]:
                raise VideoDecodeError(path, sample["failures"][0][1])
            yield 0, sample["video"]
            return
        source = TestClipDataset([VideoRecord(path, -1)], self.spec, self._views, 1, backends(self.cfg))
        info = source.info(path)
        stride_sec = stride_sec or window_sec / 2
        size = self._views.decode_size(info.height, info.width)
        chunk = max(1, self.max_batch // self._views.num_crops)
        known, spans = info.num_frames, sliding_windows(self.spec, info.num_frames, info.fps, window_sec, stride_sec)
        end = len(spans)  # windows [end:] are done; the last ones go first, to meet a truncated end before any yield

        def choose(n: int, fps: float) -> list:
            nonlocal known, spans, end
            if n < known and end == len(spans):  # n frames decodable (a truncated file): windows inside them
                known, spans = n, sliding_windows(self.spec, n, info.fps, window_sec, stride_sec)
                end = len(spans)
            return [w.indices for w in spans[max(0, end - chunk):end]]

        while end > 0:
            frames, positions = source.decode(path, size, choose)
            windows[video], first = spans, max(0, end - chunk)
            views = self._views(frames, positions)  # (windows x crops, 3, T, S, S), window-major
            views = views.view(end - first, -1, *views.shape[1:])
            for j in range(end - first):
                yield first + j, views[j]
            end = first

    def top_classes(self, probs: torch.Tensor) -> list[tuple[str, float]]:
        """The ``topk`` (class name, probability) pairs of a (C,) probability vector, best first."""
        values, indices = probs.topk(self.topk)
        return [(self.class_names[int(i)], float(v)) for v, i in zip(values, indices)]
