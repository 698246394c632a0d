"""Loading a checkpoint's weights into a model: rs3d checkpoints (EMA preferred), PySlowFast / pytorchvideo
model-zoo files and bare state dicts; strictly (every tensor, every shape) unless fine-tuning, where tensors of
another shape (a new head) keep their fresh initialisation."""
from __future__ import annotations

import logging

from torch import nn

from rs3d.checkpoint.io import CheckpointError, load_checkpoint

logger = logging.getLogger(__name__)


def exported_state(checkpoint: dict) -> dict:
    """The weights a checkpoint exports: its EMA model when it has one, else the raw model.

    Also reads PySlowFast / pytorchvideo model-zoo files (``model_state``, maybe saved under DDP with a
    ``module.`` prefix), so published baseline weights load into the matching pytorchvideo baseline.
    """
    ema = checkpoint.get("ema")
    if isinstance(ema, dict) and "module" in ema:
        state = ema["module"]
    elif "model" in checkpoint:
        state = checkpoint["model"]
    elif "model_state" in checkpoint:
        state = checkpoint["model_state"]
    elif "state_dict" in checkpoint:
        state = checkpoint["state_dict"]
    else:
        state = checkpoint  # a bare state dict
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _shape_list(names: list[str], own: dict, state: dict, limit: int = 3) -> str:
    shown = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in names[:limit]]
    return ", ".join(shown) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_weights(model: nn.Module, path: str, prefer_ema: bool = True, checkpoint: dict | None = None,
                 strict: bool = True) -> list[str]:
    """Load a checkpoint's weights into ``model``.

    ``strict`` (testing, prediction, export): every tensor must be there with its shape, or a CheckpointError
    names the first mismatches, because a partly random network would be scored as if it were trained.
    ``strict=False`` (fine-tuning, ``TRAIN.CHECKPOINT_FILE``): tensors of another shape (a new head) keep their
    fresh initialisation and are named in the log; missing or unknown tensors are still an error. Returns the
    names of the re-initialised tensors. ``checkpoint`` is the already loaded file, when the caller has it
    (``path`` then only names it in messages).
    """
    checkpoint = load_checkpoint(path) if checkpoint is None else checkpoint
    state = exported_state(checkpoint if prefer_ema else {k: v for k, v in checkpoint.items() if k != "ema"})
    own = model.state_dict()
    reinit = [k for k, v in state.items() if k in own and hasattr(v, "shape") and own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected or (strict and reinit):
        parts = []
        if reinit and strict:
            parts.append(f"{len(reinit)} tensors of another shape ({_shape_list(reinit, own, state)})")
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(f"{len(unexpected)} unknown to the model ({', '.join(unexpected[:3])}"
                         f"{', ...' if len(unexpected) > 3 else ''})")
        raise CheckpointError(f"{path}: does not fit the model: {'; '.join(parts)}; is it a checkpoint of this "
                              "architecture and class count?")
    model.load_state_dict({k: v for k, v in state.items() if k not in reinit}, strict=False)
    if reinit:
        logger.warning("%s: re-initialised %s (shape differs: another number of classes?)", path, ", ".join(reinit))
    return reinit
