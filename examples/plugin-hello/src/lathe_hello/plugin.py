"""lathe hook implementations of lathe-hello. Heavy imports go inside the hooks that need them."""

from __future__ import annotations

from pathlib import Path

from lathe.hookspecs import hookimpl
from lathe_hello.config import HelloConfig

LOG_FILE = "grad_norm_histogram.jsonl"


@hookimpl
def lathe_config_model() -> type[HelloConfig]:
    return HelloConfig


@hookimpl
def lathe_callbacks(cfg):  # type: ignore[no-untyped-def]
    if not cfg.hello_grad_histogram:
        return []
    from lathe_hello.histogram import GradNormHistogram

    return [GradNormHistogram(Path(cfg.output_dir) / LOG_FILE)]
