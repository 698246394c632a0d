"""Configuration: defaults, YAML loading with ``_BASE_`` and checked ``KEY VALUE`` overrides."""

from rs3d.config.defaults import get_cfg
from rs3d.config.loader import (
    ConfigError,
    config_from_text,
    load_config,
    merge_overrides,
    merge_yaml,
)

__all__ = ["ConfigError", "config_from_text", "get_cfg", "load_config", "merge_overrides", "merge_yaml"]
