"""The configs shipped with rs3d: where they live (``rs3d/configs`` in an installed package, ``configs/`` in the
repository: the same files, mapped by setup.py) and the model names they define.

A config is named by its file name without ``.yaml`` (``rs3d_50``, ``slow_r50``, ``rs3d_tiny``) when that is
unique among the model folders, or by its path under the configs folder (``kinetics400/variants/rs3d_50_randaug``,
``finetune/rs3d_50_imagenet``). ``rs3d:NAME`` works wherever a config path is accepted (``--cfg``, ``_BASE_``).
"""
from __future__ import annotations

import fnmatch
import os

from rs3d.utils.errors import UserInputError

#: Prefix that makes a config path refer to the shipped configs, e.g. ``--cfg rs3d:finetune/rs3d_50_imagenet``.
PACKAGED_PREFIX = "rs3d:"
#: Folders whose configs are models listed by ``list_models()`` (the Kinetics-400 zoo and the toy models).
MODEL_FOLDERS = ("kinetics400", "toy")


class ConfigError(UserInputError, ValueError):
    """A config file or override is invalid; the message is one line naming the source and key.
    (Defined here, the config package's lowest module; ``rs3d.config.ConfigError`` is the same class.)"""


class UnknownConfigError(ConfigError):
    """No shipped config has that name."""


def config_root() -> str:
    """The folder holding the shipped configs: ``rs3d/configs`` when installed, else the repository's ``configs/``."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../rs3d
    for candidate in (os.path.join(package, "configs"), os.path.join(os.path.dirname(package), "configs")):
        if os.path.isfile(os.path.join(candidate, "Base-RS3D.yaml")):  # package files: local by construction
            return candidate
    raise UserInputError(f"the shipped configs are missing (looked in {package}/configs and ../configs); "
                         "reinstall rs3d")


def list_configs() -> dict[str, str]:
    """Every shipped config: relative name without ``.yaml`` (``kinetics400/rs3d_50``) -> absolute path."""
    root = config_root()
    found = {}
    for folder, dirs, files in os.walk(root):  # the shipped configs: package files, local by construction
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".yaml") and not name.startswith("Base-"):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, root)[: -len(".yaml")].replace(os.sep, "/")] = path
    return found


def model_names() -> dict[str, str]:
    """Model names (``rs3d_50``, ``slow_r50``, ``rs3d_tiny`` ...) -> config path, for configs directly in a model
    folder (:data:`MODEL_FOLDERS`)."""
    names = {}
    for rel, path in list_configs().items():
        folder, _, name = rel.rpartition("/")
        if folder in MODEL_FOLDERS:
            if name in names:
                raise RuntimeError(f"two shipped configs are named {name}: {names[name]} and {path}")
            names[name] = path
    return names


def list_model_names(pattern: str = "*") -> list[str]:
    """Sorted model names matching a shell-style ``pattern`` (``"rs3d_*"``)."""
    return sorted(n for n in model_names() if fnmatch.fnmatchcase(n, pattern))


def find_config(name: str) -> str:
    """Path of a shipped config: a model name (``rs3d_50``), a relative name (``finetune/rs3d_50_imagenet``,
    ``.yaml`` optional) or either with the ``rs3d:`` prefix."""
    key = name[len(PACKAGED_PREFIX):] if name.startswith(PACKAGED_PREFIX) else name
    key = key.removesuffix(".yaml").strip("/")
    models = model_names()
    if key in models:
        return models[key]
    configs = list_configs()
    if key in configs:
        return configs[key]
    base = os.path.join(config_root(), key + ".yaml")
    if os.path.basename(key).startswith("Base-") and os.path.isfile(base):  # a shipped (local) file
        return base
    import difflib

    hint = difflib.get_close_matches(key, list(models) + list(configs), n=1)
    raise UnknownConfigError(f"unknown model or config {name!r}" + (f" (did you mean {hint[0]}?)" if hint else "")
                             + "; rs3d.list_models() lists the models")


def resolve_config_path(path: str) -> str:
    """``rs3d:NAME`` -> the shipped file; any other path is returned as it is."""
    return find_config(path) if path.startswith(PACKAGED_PREFIX) else path
