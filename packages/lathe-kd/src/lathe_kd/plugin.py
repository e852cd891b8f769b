"""lathe hook implementations for knowledge distillation."""

from __future__ import annotations

from lathe.hookspecs import hookimpl
from lathe_kd.config import KDConfig


@hookimpl
def lathe_config_model() -> type[KDConfig]:
    return KDConfig
