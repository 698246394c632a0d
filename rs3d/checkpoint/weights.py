"""Loading a checkpoint's weights into a model: rs3d checkpoints (EMA preferred), PySlowFast / pytorchvideo
model-zoo files and bare state dicts; tensors of another shape (a new head) keep their fresh initialisation."""
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


def load_weights(model: nn.Module, path: str, prefer_ema: bool = True, checkpoint: dict | None = None) -> list[str]:
    """Load a checkpoint's weights for fine-tuning or testing; tensors of another shape (a new head) are
    left at their fresh initialisation. Returns the names of the re-initialised tensors.

    ``checkpoint`` is the already loaded file, when the caller has it (``path`` then only names it in messages).
    """
    checkpoint = load_checkpoint(path) if checkpoint is None else checkpoint
    state = exported_state(checkpoint if prefer_ema else {k: v for k, v in checkpoint.items() if k != "ema"})
    own = model.state_dict()
    reinit = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in reinit}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k not in reinit]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{path}: does not fit MODEL.ARCH (missing {missing[:4]}, unexpected "
                              f"{result.unexpected_keys[:4]}); is it a checkpoint of this architecture?")
    if reinit:
        logger.warning("%s: re-initialised %s (shape differs: another number of classes?)", path, ", ".join(reinit))
    return reinit
