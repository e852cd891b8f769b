"""lathe hook implementations for Spectrum."""

from __future__ import annotations

import sys
from typing import Any

from lathe.hookspecs import hookimpl
from lathe_spectrum.config import SpectrumConfig


@hookimpl
def lathe_config_model() -> type[SpectrumConfig]:
    return SpectrumConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    if cfg.adapter:
        return [
            f"spectrum chooses which full weights to train and cannot be combined with adapter: {cfg.adapter}; "
            "remove `adapter` or the spectrum plugin"
        ]
    return []


@hookimpl
def lathe_post_model_load(cfg: Any, model: Any) -> None:
    from lathe_spectrum.scan import load_or_scan
    from lathe_spectrum.select import freeze_all_but, top_layers

    result = load_or_scan(model, cfg.spectrum_model_name or cfg.base_model, cfg.spectrum_snr_dir)
    kept = top_layers(result.layers, cfg.spectrum_top_fraction)
    summary = freeze_all_but(model, kept)
    print(
        f"lathe: spectrum: training {len(kept)} of {len(result.layers)} scanned weights (top "
        f"{cfg.spectrum_top_fraction:g} per type) plus embeddings and lm_head: {summary.trainable:,} of "
        f"{summary.total:,} parameters ({100 * summary.trainable / max(summary.total, 1):.1f}%)",
        file=sys.stderr,
    )


@hookimpl
def lathe_register_commands(cli: Any) -> None:
    from lathe_spectrum.cli import spectrum

    cli.add_command(spectrum)
