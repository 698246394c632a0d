"""A rerun in a folder that holds a run continues that run or refuses, before anything is written.

The merged config is compared with the folder's ``config.yaml``. A change of model or data is another experiment:
refused (issue 25: a changed width crashed only after ``config.yaml`` was rewritten, and ``rs3d-test`` then scored
a mostly re-initialised network). A change of the recipe (learning rate, epochs, batch, seed, ...) is refused
unless ``--allow-changes`` says it is meant (more epochs, say); keys that change only speed, logging or where
things go are accepted. Every accepted change is appended to ``config_history.jsonl`` with the step it applies
from, so ``config.yaml`` (the current values) never silently rewrites the run's history.
"""
from __future__ import annotations

import json
import os
import time

import yaml
from fvcore.common.config import CfgNode

from rs3d.utils import paths
from rs3d.utils.appending import append_text
from rs3d.utils.errors import UserInputError

#: Keys that change how fast, how verbosely or where a run goes, never what it computes.
FREE_KEYS = ("OUTPUT_DIR", "TRAIN.LOG_PERIOD", "TRAIN.DEVICE", "TRAIN.AUTO_RESUME", "TRAIN.DIST_TIMEOUT_MINUTES",
             "TRAIN.CHECKPOINT_PERIOD", "TRAIN.CHECKPOINT_PERIOD_ITERS", "TRAIN.KEEP_CHECKPOINTS", "TRAIN.COMPILE",
             "TRAIN.COMPILE_SCOPE", "TRAIN.CHANNELS_LAST", "MODEL.RESNET3D.CONV_IMPL", "MODEL.RESNET3D.FUSED_TAIL",
             "TRAIN.ENABLE", "DATA.AUGMENT_ON_DEVICE")
#: The final test's keys change what is reported, not what was trained (its report says which views it used).
FREE_PREFIXES = ("DATA_LOADER.", "TEST.")
#: Keys whose change makes another experiment: never continued in the same folder.
FIXED_PREFIXES = ("MODEL.", "DATA.")


class RerunRefusedError(UserInputError):
    """The folder holds a run that this command line would not continue."""


def flat(tree: dict, prefix: str = "") -> dict:
    """``{"A": {"B": 1}}`` -> ``{"A.B": 1}``."""
    out = {}
    for key, value in tree.items():
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def kind(key: str) -> str:
    """"free", "fixed" (model or data) or "recipe"."""
    if key in FREE_KEYS or key.startswith(FREE_PREFIXES):
        return "free"
    return "fixed" if key.startswith(FIXED_PREFIXES) else "recipe"


def config_changes(cfg: CfgNode, output_dir: str) -> dict[str, list]:
    """Keys whose value differs from ``output_dir/config.yaml`` (``{key: [old, new]}``); empty for a new folder."""
    previous = os.path.join(output_dir, "config.yaml")
    if not paths.isfile(previous):
        return {}
    try:
        old = flat(yaml.safe_load(paths.read_text(previous)) or {})
    except yaml.YAMLError as e:
        raise RerunRefusedError(f"{previous}: not a readable config ({str(e).splitlines()[0]}); give another "
                                "OUTPUT_DIR") from None
    new = flat(yaml.safe_load(cfg.dump()))
    return {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}


def check_rerun(cfg: CfgNode, output_dir: str, allow_changes: bool = False) -> dict[str, list]:
    """The accepted changes against the folder's run, or a :class:`RerunRefusedError` naming the refused keys."""
    changes = config_changes(cfg, output_dir)

    def listed(keys: list[str]) -> str:
        return ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in keys[:6]) + \
            (f" and {len(keys) - 6} more" if len(keys) > 6 else "")

    fixed = [k for k in changes if kind(k) == "fixed"]
    if fixed:
        raise RerunRefusedError(f"{output_dir} holds a run of another model or data ({listed(fixed)}); give a new "
                                "OUTPUT_DIR for it")
    recipe = [k for k in changes if kind(k) == "recipe"]
    if recipe and not allow_changes:
        raise RerunRefusedError(f"{output_dir} holds a run with other settings ({listed(recipe)}); pass "
                                "--allow-changes to continue it with the new values, or give a new OUTPUT_DIR")
    return changes


def record_changes(output_dir: str, changes: dict[str, list], step: int) -> None:
    """Append the accepted ``changes`` (and the step from which they apply) to ``config_history.jsonl``."""
    if not changes:
        return
    append_text(os.path.join(output_dir, "config_history.jsonl"),
                json.dumps({"time": time.time(), "step": step, "changes": changes}) + "\n")
