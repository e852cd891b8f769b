"""lathe hook implementations for masked diffusion language modelling."""

from __future__ import annotations

from lathe.hookspecs import hookimpl
from lathe_diffusion.config import DiffusionConfig


@hookimpl
def lathe_config_model() -> type[DiffusionConfig]:
    return DiffusionConfig
