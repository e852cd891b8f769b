"""The typed config: schema by concern, YAML loading, overrides, Axolotl compatibility."""

from lathe.config.base import ConfigModel
from lathe.config.data import DatasetConfig
from lathe.config.fields import data_field, secret_field
from lathe.config.load import ConfigError, apply_overrides, load_config, read_yaml, validate
from lathe.config.save import redact, save_resolved
from lathe.config.schema import Config, CoreConfig, config_class

__all__ = [
    "Config",
    "ConfigError",
    "ConfigModel",
    "CoreConfig",
    "DatasetConfig",
    "apply_overrides",
    "config_class",
    "data_field",
    "load_config",
    "read_yaml",
    "redact",
    "save_resolved",
    "secret_field",
    "validate",
]
