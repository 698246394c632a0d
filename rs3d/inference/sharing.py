"""Sharing a trained model: ``save_pretrained`` writes a pretrained folder (safetensors weights, config, class names
and a generated model card, ``rs3d.checkpoint.hub``) and ``push_to_hub`` uploads it with huggingface_hub.

The card is built from the run itself: the architecture and recipe from its config, parameters and GFLOPs from the
model, and the validation and multi-view test numbers from the reports the run wrote next to its checkpoint
(``metrics.jsonl``, ``test_<split>.json``).
"""
from __future__ import annotations

import json
import os

from fvcore.common.config import CfgNode

from rs3d.checkpoint import CheckpointError, load_checkpoint, load_weights
from rs3d.checkpoint.hub import HUB_PREFIX, save_pretrained_files
from rs3d.config import config_from_text, load_config
from rs3d.evaluation.reports import last_by_split, read_metrics
from rs3d.models import build_model
from rs3d.utils import paths
from rs3d.utils.complexity import count_gflops, count_parameters


def run_results(run_dir: str) -> dict:
    """A finished run's numbers: ``validation`` (the last one, of the EMA model when there is one) and ``tests``
    (each multi-view test, by split)."""
    out: dict = {"tests": {}}
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if paths.isfile(metrics):
        last = last_by_split(read_metrics(metrics))
        if "val" in last or "val_ema" in last:
            out["validation"] = dict(last.get("val_ema") or last["val"], model="EMA" if "val_ema" in last else "raw")
    if paths.isdir(run_dir):
        for name in sorted(paths.ls(run_dir)):
            if name.startswith("test_") and name.endswith(".json"):
                out["tests"][name[len("test_"):-len(".json")]] = json.loads(paths.read_text(os.path.join(run_dir, name)))
    return out


def _pct(value: object) -> str:
    return f"{value:.2f}%" if isinstance(value, (int, float)) else "n/a"


def model_card(cfg: CfgNode, class_names: list[str], params: int, gflops: float, results: dict,
               repo_id: str = "ORG/NAME", ema: bool = True) -> str:
    """The README.md of a pretrained folder: metadata for the Hub, then what the model is, how it was trained,
    on what, how well it did, what it is for and how to load it."""
    d, s, m, r = cfg.DATA, cfg.SOLVER, cfg.MODEL, cfg.MODEL.RESNET3D
    arch = m.ARCH if m.ARCH != "resnet3d" else (
        f"3D ResNet-RS, {len(r.BLOCKS) and 'blocks ' + str(list(r.BLOCKS)) or 'depth ' + str(r.DEPTH)}, width "
        f"x{r.WIDTH_MULTIPLIER}, stem {r.STEM_TYPE} (temporal kernel {r.STEM_TEMPORAL_KERNEL}, stride "
        f"{r.STEM_TEMPORAL_STRIDE}), temporal kernels {list(r.TEMPORAL_KERNELS_PER_BLOCK) or list(r.TEMPORAL_KERNELS)}"
        f", SE {r.SE_RATIO}, self-gating {r.SELF_GATING}, stochastic depth {r.DROP_PATH_RATE}")
    norm = "pixels / 255" if d.NORMALIZATION == "unit" else f"(pixels / 255 - {list(d.MEAN)}) / {list(d.STD)}"
    lines = [
        "---", "library_name: rs3d", "pipeline_tag: video-classification",
        "tags: [rs3d, video-classification, 3d-cnn, resnet-rs]", "---", "",
        f"# {repo_id.split('/')[-1]}", "",
        f"A video classifier with {m.NUM_CLASSES} classes, trained with rs3d (3D ResNet-RS for video).", "",
        "## Model", "",
        f"- Architecture: {arch}.",
        f"- Parameters: {params / 1e6:.2f} M; {gflops:.2f} GFLOPs (multiply-adds, fvcore) per view of "
        f"{d.NUM_FRAMES}x{d.TEST_CROP_SIZE}x{d.TEST_CROP_SIZE}.",
        f"- Input: {d.NUM_FRAMES} RGB frames {d.SAMPLING_RATE} apart"
        f"{f' at {d.TARGET_FPS} fps' if d.TARGET_FPS else ''}, crops of {d.TRAIN_CROP_SIZE} (training) and "
        f"{d.TEST_CROP_SIZE} (test), normalised as {norm}; output: {m.NUM_CLASSES} logits.",
        "- Weights: " + ("the exponential moving average of the training weights" if ema else
                         "the training weights (the run kept no moving average)") + ", as safetensors.",
        "", "## Training", "",
        f"- {s.MAX_EPOCH} epochs, SGD{' with Nesterov momentum' if s.NESTEROV else ''} {s.MOMENTUM}, learning rate "
        f"{s.BASE_LR} at a batch of {s.REFERENCE_BATCH_SIZE} (scaled linearly), {s.WARMUP_EPOCHS} warm-up epochs then "
        f"cosine, weight decay {s.WEIGHT_DECAY}, label smoothing {s.LABEL_SMOOTHING}, dropout {m.DROPOUT_RATE}, "
        f"EMA {s.EMA_DECAY}.",
        f"- Augmentation: {d.TRAIN_CROP_MODE} crops (area {list(d.TRAIN_CROP_AREA)}), flip {d.FLIP_PROB}, "
        + (f"RandAugment ({d.RANDAUGMENT_POLICY}) {d.RANDAUGMENT_LAYERS} layers, magnitude {d.RANDAUGMENT_MAGNITUDE}"
           if d.RANDAUGMENT_LAYERS else "no RandAugment") + f"; mixed precision {cfg.TRAIN.MIXED_PRECISION}.",
        f"- Initial weights: {m.INIT.FROM or 'random'}.",
        "", "## Data", "",
        f"- Trained on `{os.path.basename(os.path.normpath(d.PATH_TO_DATA_DIR)) or d.PATH_TO_DATA_DIR}`: "
        f"{len(class_names)} classes ({', '.join(class_names[:8])}{', ...' if len(class_names) > 8 else ''}); "
        "`classnames.json` lists them in output order.",
        "", "## Results", "",
    ]
    if not results.get("validation") and not results.get("tests"):
        lines.append("- No evaluation reports were found next to the checkpoint.")
    val = results.get("validation")
    if val:
        lines.append(f"- Validation, 1 view ({val['model']} model): top-1 {_pct(val.get('top1'))}, top-5 "
                     f"{_pct(val.get('top5'))}.")
    for split, test in results.get("tests", {}).items():
        lines.append(f"- Test on `{split}`, {test.get('views_per_video', '?')} views per video, "
                     f"{test.get('num_videos', '?')} videos: top-1 {_pct(test.get('top1'))}, top-5 "
                     f"{_pct(test.get('top5'))}, mean class accuracy {_pct(test.get('mean_class_accuracy'))}.")
    lines += [
        "", "## Intended use and limits", "",
        "Recognising the listed actions in short clips like those it was trained on; as a starting point for "
        "fine-tuning (`MODEL.INIT.FROM`). Accuracy on other footage, classes or frame rates is unknown. Not for "
        "decisions about people.",
        "", "## How to load", "",
        "```python", "import rs3d", "",
        f'model = rs3d.create_model("{HUB_PREFIX}{repo_id}")          # config and weights from this folder',
        f'predictor = rs3d.Predictor(None, "{HUB_PREFIX}{repo_id}")   # videos -> classes with names',
        "```", "",
        "```bash",
        f"rs3d-predict --checkpoint {HUB_PREFIX}{repo_id} video.mp4",
        f"rs3d-train --cfg YOUR.yaml MODEL.INIT.FROM {HUB_PREFIX}{repo_id}   # fine-tune",
        "```", "",
        "A local copy of this folder works wherever the hub name does. The weights are safetensors: loading runs "
        "no code.", "",
    ]
    return "\n".join(lines)


def exports_ema(state: dict, cfg: CfgNode) -> bool:
    """Whether a checkpoint's exported weights are the EMA: a training checkpoint has an ``ema`` entry;
    ``model_final.pyth`` holds only the exported model and says which in ``weights`` (files written before that
    tag: the EMA whenever the run's SOLVER.EMA_DECAY was on, as the trainer exports it then)."""
    if isinstance(state.get("ema"), dict):
        return True
    if "weights" in state:
        return state["weights"] == "ema"
    return "model" in state and "optimizer" not in state and cfg.SOLVER.EMA_DECAY > 0


def save_pretrained(checkpoint: str, folder: str, cfg_path: str | None = None, run_dir: str | None = None,
                    repo_id: str = "ORG/NAME") -> list[str]:
    """Write ``checkpoint``'s exported weights (EMA when present) as a pretrained folder with a model card.

    The config is the one stored in the checkpoint (or ``cfg_path``); the card's numbers come from ``run_dir``
    (default: the checkpoint's folder, where a run keeps ``model_final.pyth`` and its reports). The weights are
    checked to fit the config's model exactly before anything is written."""
    state = load_checkpoint(checkpoint)
    if cfg_path:
        cfg = load_config(cfg_path)
    elif state.get("config"):
        cfg = config_from_text(state["config"], f"{checkpoint} (stored config)")
    else:
        raise CheckpointError(f"{checkpoint}: holds no config; pass the config file (--cfg)")
    model = build_model(cfg, init=False)
    load_weights(model, checkpoint, checkpoint=state)  # strict: one CheckpointError names what does not fit
    class_names = list(state.get("class_names") or [str(i) for i in range(cfg.MODEL.NUM_CLASSES)])
    gflops = count_gflops(model, (cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE))
    results = run_results(run_dir if run_dir is not None else os.path.dirname(checkpoint))
    card = model_card(cfg, class_names, count_parameters(model), gflops, results, repo_id,
                      ema=exports_ema(state, cfg))
    return save_pretrained_files(folder, model.state_dict(), cfg.dump(), class_names, card)


def push_to_hub(folder: str, repo_id: str, private: bool = False) -> str:
    """Upload a pretrained folder to the Hugging Face Hub as ``repo_id`` (created if needed); returns its URL.
    Needs a token (``huggingface-cli login`` or ``HF_TOKEN``)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="Upload rs3d model")
    return f"https://huggingface.co/{repo_id}"
