"""lathe hook implementations for torchao: QAT, FP8 training, and the ``lathe quantize`` command."""

from __future__ import annotations

import sys
from typing import Any

from lathe.hookspecs import hookimpl
from lathe_torchao.config import TorchaoConfig


@hookimpl
def lathe_config_model() -> type[TorchaoConfig]:
    return TorchaoConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    problems = []
    if cfg.qat is not None and cfg.adapter:  # core already refuses load_in_4bit/8bit without an adapter
        problems.append(f"qat: trains the full model; it cannot be combined with adapter: {cfg.adapter}")
    if cfg.fp8_enable_fsdp_float8_all_gather and _fsdp_version(cfg) != 2:
        problems.append("fp8_enable_fsdp_float8_all_gather requires FSDP2 (fsdp_config with fsdp_version: 2)")
    return problems


def _fsdp_version(cfg: Any) -> int | None:
    """The FSDP version the run uses (FSDP is on with ``fsdp_config`` or ``fsdp``; 2 by default), or None."""
    if not (cfg.fsdp_config or cfg.fsdp):
        return None
    return cfg.fsdp_version or (cfg.fsdp_config.fsdp_version if cfg.fsdp_config else None) or 2


@hookimpl
def lathe_post_model_build(cfg: Any, model: Any) -> None:
    if cfg.qat is not None:
        from lathe_torchao.qat import prepare

        count = prepare(model, cfg.qat)
        print(f"lathe: torchao: QAT fake-quantizes {count} weights/activations "
              f"(weight {cfg.qat.weight_dtype}, activation {cfg.qat.activation_dtype})", file=sys.stderr)
    if cfg.fp8:
        from lathe_torchao.fp8 import convert_to_float8

        convert_to_float8(model, cfg)


@hookimpl
def lathe_callbacks(cfg: Any) -> list[Any]:
    if cfg.qat is None:
        return []
    from lathe_torchao.qat import QATCallback

    return [QATCallback(cfg.qat)]


@hookimpl
def lathe_register_commands(cli: Any) -> None:
    from lathe_torchao.cli import quantize

    cli.add_command(quantize)
