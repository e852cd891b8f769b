"""lathe hook implementations for Grokfast."""

from __future__ import annotations

from lathe.hookspecs import hookimpl
from lathe_grokfast.config import GrokfastConfig


@hookimpl
def lathe_config_model() -> type[GrokfastConfig]:
    return GrokfastConfig


@hookimpl
def lathe_callbacks(cfg):  # type: ignore[no-untyped-def]
    from lathe_grokfast.filter import GrokfastCallback

    return [GrokfastCallback(cfg.grokfast_alpha, cfg.grokfast_lamb)]
