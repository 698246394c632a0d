"""Pretrained folders, as the Hugging Face Hub and timm keep them: ``model.safetensors`` (the weights),
``config.yaml`` (rs3d's config), ``classnames.json`` and a ``README.md`` model card; locally or as ``hf-hub:org/name``.

safetensors holds tensors and nothing else, so loading such a folder runs no code by construction (a ``.pyth`` is a
pickle container that only ``weights_only=True`` keeps safe). A hub name is resolved by ``huggingface_hub``'s own
download and cache (``snapshot_download``), which also honours ``HF_HUB_OFFLINE=1`` and a pre-populated cache.
"""
from __future__ import annotations

import json
import os

import torch

from rs3d.checkpoint.io import CheckpointError
from rs3d.utils import paths

HUB_PREFIX = "hf-hub:"
WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
CLASS_NAMES = "classnames.json"
CARD = "README.md"
#: What a pretrained folder holds (and all that a hub download fetches).
FILES = (WEIGHTS, CONFIG, CLASS_NAMES, CARD)


def is_pretrained_source(path: str) -> bool:
    """Whether ``path`` names a pretrained folder: ``hf-hub:org/name`` or a folder holding ``model.safetensors``."""
    return path.startswith(HUB_PREFIX) or (paths.isdir(path) and paths.isfile(os.path.join(path, WEIGHTS)))


#: hub name -> its local snapshot folder, so one process asks the hub once per name (create_model reads the config
#: and then the weights; each snapshot_download would otherwise be another request when online).
_RESOLVED: dict[str, str] = {}


def resolve(path: str) -> str:
    """The local folder of ``path``: a hub name is downloaded into (or found in) huggingface_hub's cache, once per
    process."""
    if not path.startswith(HUB_PREFIX):
        return path
    if path not in _RESOLVED:
        _RESOLVED[path] = _download(path)
    return _RESOLVED[path]


def _download(path: str) -> str:
    """snapshot_download of a hub name's files, its failures as one-line CheckpointErrors."""
    repo_id = path[len(HUB_PREFIX):]
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, allow_patterns=list(FILES))
    except LocalEntryNotFoundError:
        raise CheckpointError(f"{path}: not in the Hugging Face cache, and the hub cannot be reached (offline, or "
                              "HF_HUB_OFFLINE is set)") from None
    except (HfHubHTTPError, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: {str(e).splitlines()[0][:160]}") from None


def config_text(path: str) -> str | None:
    """The ``config.yaml`` text of a pretrained folder or hub name (None if it has none), without its weights."""
    config = os.path.join(resolve(path), CONFIG)
    return paths.read_text(config) if paths.isfile(config) else None


def load_pretrained(path: str) -> dict:
    """A pretrained folder (or hub name) as a checkpoint dict: ``model`` (the weights), ``config`` (text),
    ``class_names`` and ``arch``, as :func:`rs3d.checkpoint.load_checkpoint` returns for a ``.pyth``."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    folder = resolve(path)
    weights = os.path.join(folder, WEIGHTS)
    if not paths.isfile(weights):
        raise CheckpointError(f"{path}: no {WEIGHTS} in {folder}")
    try:
        with paths.open_seekable(weights) as f:
            state = load(f.read())
    except SafetensorError as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({e})") from None
    checkpoint: dict = {"model": state}
    text = config_text(folder)
    if text is not None:
        checkpoint["config"] = text
    names = os.path.join(folder, CLASS_NAMES)
    if paths.isfile(names):
        checkpoint["class_names"] = json.loads(paths.read_text(names))
    return checkpoint


def save_pretrained_files(folder: str, state: dict[str, torch.Tensor], config_text: str,
                          class_names: list[str] | None, card: str) -> list[str]:
    """Write a pretrained folder (each file atomically); returns the paths written."""
    from safetensors.torch import save

    from rs3d.utils.atomic import atomic_open

    paths.makedirs(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    written = []
    for name, payload in ((WEIGHTS, save(tensors, metadata={"format": "pt"})), (CONFIG, config_text),
                          (CLASS_NAMES, json.dumps(class_names or [], indent=1) + "\n"), (CARD, card)):
        target = os.path.join(folder, name)
        with atomic_open(target, "wb" if isinstance(payload, bytes) else "w") as f:
            f.write(payload)
        written.append(target)
    return written
