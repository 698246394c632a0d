"""Every random-number generator a run uses, captured into and restored from a checkpoint."""
from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    """Every RNG the run uses, in a form ``weights_only`` loading accepts (no numpy arrays)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured (tensors are moved back to the CPU, wherever they were loaded)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        # one state per GPU the writer saw: restore those this machine has (a run resumed on fewer GPUs, or with
        # CUDA_VISIBLE_DEVICES narrowed, would otherwise index past its devices); extra GPUs keep their seeds
        for index, device_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state.cpu(), index)
