"""Load YAML configs with ``_BASE_`` inheritance and ``KEY VALUE`` overrides, checking every key, type and
allowed value (``rs3d.config.checks``).

Each YAML file is checked on its own, so an error names the file (or "command line") that holds the bad key.
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from fvcore.common.config import CfgNode

from rs3d.config.catalog import PACKAGED_PREFIX, ConfigError, resolve_config_path
from rs3d.config.checks import accepts_auto, check_config, check_value
from rs3d.config.defaults import get_cfg
from rs3d.utils import paths
from rs3d.utils.imports import CustomImportError, import_modules
from rs3d.utils.text_files import read_utf8

BASE_KEY = "_BASE_"


def load_config(path: str | None = None, overrides: Sequence[str] = ()) -> CfgNode:
    """Defaults, then the YAML file at ``path`` (with its ``_BASE_`` chain), then ``KEY VALUE`` overrides; frozen.

    ``path`` may name a shipped config (``rs3d:rs3d_50``, ``rs3d:finetune/rs3d_50_imagenet``). ``MODEL.NUM_CLASSES 0``
    means "as many as the data has" and is replaced here by the count from ``DATA.PATH_TO_DATA_DIR`` (its class
    names file or its class folders), so the saved config and checkpoints hold the real number.
    """
    cfg = get_cfg()
    if path is not None:
        merge_yaml(cfg, path)
    merge_overrides(cfg, overrides)
    import_custom_modules(cfg, path or "config")
    check_config(cfg, path or "config")  # every allowed value and range (rs3d.config.checks), before the data is read
    resolve_num_classes(cfg)
    cfg.freeze()
    return cfg


def resolve_num_classes(cfg: CfgNode) -> None:
    """Set ``MODEL.NUM_CLASSES`` from the data when it is 0 and the data says how many classes there are."""
    if cfg.MODEL.NUM_CLASSES != 0 or not cfg.DATA.PATH_TO_DATA_DIR:
        return
    from rs3d.utils.class_folders import count_classes  # the data layer's folder convention, shared

    count = count_classes(cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.CLASS_NAMES_FILE)
    if count:
        cfg.MODEL.NUM_CLASSES = count


def config_from_text(text: str, source: str, overrides: Sequence[str] = ()) -> CfgNode:
    """Defaults merged with a dumped config (e.g. the one stored in a checkpoint), then overrides; frozen.

    ``MODEL.INIT.FROM`` is cleared: a stored config's weights are the checkpoint's, not its run's starting point
    (which may not exist on this machine)."""
    cfg = get_cfg()
    if not isinstance(text, str):  # a checkpoint's "config" entry that someone filled with something else
        raise ConfigError(f"{source}: expected the text of a YAML config, got {type(text).__name__}")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: top level must be a mapping of config keys")
    data.pop(BASE_KEY, None)
    _merge_checked(cfg, data, source=source, prefix="")
    cfg.MODEL.INIT.FROM, cfg.MODEL.INIT.FILE = "", ""
    merge_overrides(cfg, overrides)
    import_custom_modules(cfg, source)
    check_config(cfg, source)
    cfg.freeze()
    return cfg


def import_custom_modules(cfg: CfgNode, source: str) -> None:
    """Import the config's CUSTOM_IMPORTS (:mod:`rs3d.utils.imports`), so what they register is known from here on."""
    try:
        import_modules(list(cfg.CUSTOM_IMPORTS))
    except CustomImportError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def merge_yaml(cfg: CfgNode, path: str, _seen: tuple[str, ...] = ()) -> None:
    """Merge a YAML file into ``cfg``, after its ``_BASE_`` file(s), checking keys and types. The file (and a
    relative ``_BASE_``) may be on any iopath handler (``s3://``, ``http://``, ...)."""
    path = paths.absolute(resolve_config_path(path))
    if path in _seen:
        raise ConfigError(f"{path}: _BASE_ cycle through {' -> '.join(_seen)}")
    if not paths.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    text = read_utf8(path, ConfigError, "the config")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping of config keys")
    bases = data.pop(BASE_KEY, [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{path}: _BASE_ must be a config file or a list of them, got {bases!r}")
    for base in bases:
        if base.startswith(PACKAGED_PREFIX) or os.path.isabs(base) or not paths.is_local(base):
            base_path = base
        else:
            base_path = os.path.join(os.path.dirname(path), base)
        merge_yaml(cfg, base_path, _seen + (path,))
    _merge_checked(cfg, data, source=path, prefix="")


def merge_overrides(cfg: CfgNode, overrides: Sequence[str]) -> None:
    """Merge trailing command-line ``KEY VALUE`` pairs, e.g. ``["SOLVER.BASE_LR", "0.4"]``."""
    if len(overrides) % 2:
        raise ConfigError(f"command line: overrides come in KEY VALUE pairs, got {len(overrides)} items")
    for key, raw in zip(overrides[0::2], overrides[1::2]):
        node: dict[str, Any] = {}
        cursor = node
        parts = key.split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = _parse_value(raw)
        _merge_checked(cfg, node, source="command line", prefix="")


def _parse_value(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _merge_checked(cfg: CfgNode, data: Mapping, source: str, prefix: str) -> None:
    for key, value in data.items():
        full_key = f"{prefix}{key}"
        if key not in cfg:
            hint = difflib.get_close_matches(str(key), [str(k) for k in cfg.keys()], n=1)
            suggestion = f" (did you mean {prefix}{hint[0]}?)" if hint else ""
            raise ConfigError(f"{source}: unknown config key {full_key}{suggestion}")
        default = cfg[key]
        if isinstance(default, CfgNode):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: {full_key} is a section; give it a mapping, not {value!r}")
            _merge_checked(default, value, source, prefix=f"{full_key}.")
        else:
            cfg[key] = _coerce(value, default, source, full_key)
            check_value(full_key, cfg[key], source)


def _coerce(value: Any, default: Any, source: str, key: str) -> Any:
    """Return ``value`` converted to the type of ``default`` where that is lossless, else raise."""
    def fail() -> ConfigError:
        return ConfigError(
            f"{source}: {key} expects {type(default).__name__} like {default!r}, got {value!r}"
        )

    if default is None or value is None or accepts_auto(key):  # "auto" or a number: checked by its rule
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise fail()
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise fail()
        kinds = {type(x) for x in default}
        if len(kinds) == 1 and not isinstance(default[0], (list, tuple)):
            try:
                value = [_coerce(x, default[0], source, key) for x in value]
            except ConfigError:
                raise fail() from None
        return type(default)(value)
    if isinstance(value, bool) or not isinstance(value, type(default)):
        raise fail()
    return value
