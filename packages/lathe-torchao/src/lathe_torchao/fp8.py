"""FP8 training: torchao swaps the linear layers it can run in float8 for ``Float8Linear``."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import torch


def float8_config(cfg: Any) -> Any:
    """torchao's ``Float8LinearConfig`` for the recipe of ``fp8_config`` (tensorwise by default)
    and ``fp8_enable_fsdp_float8_all_gather``."""
    from torchao.float8 import Float8LinearConfig

    recipe = cfg.fp8_config.recipe if cfg.fp8_config is not None else "tensorwise"
    config = Float8LinearConfig.from_recipe_name(recipe)
    return dataclasses.replace(config, enable_fsdp_float8_all_gather=bool(cfg.fp8_enable_fsdp_float8_all_gather))


def unsupported(module: torch.nn.Linear) -> str | None:
    """Why torchao's float8 matmul cannot take this layer (its dims must be multiples of 16)."""
    if module.in_features % 16 or module.out_features % 16:
        return f"{module.in_features}x{module.out_features} is not a multiple of 16"
    return None


def convert_to_float8(model: torch.nn.Module, cfg: Any) -> list[str]:
    """Swap the supported linear layers; print and return the names of those left in high precision."""
    from torchao.float8 import convert_to_float8_training

    skipped: list[str] = []

    def keep(module: torch.nn.Module, fqn: str) -> bool:
        reason = unsupported(module) if isinstance(module, torch.nn.Linear) else None
        if reason:
            skipped.append(f"{fqn} ({reason})")
        return reason is None

    convert_to_float8_training(model, module_filter_fn=keep, config=float8_config(cfg))
    converted = sum(type(m).__name__ == "Float8Linear" for m in model.modules())
    print(f"lathe: torchao: fp8 trains {converted} linear layers in float8", file=sys.stderr)
    if skipped:
        print(f"lathe: torchao: fp8 leaves {len(skipped)} linear layers in high precision: {', '.join(skipped)}",
              file=sys.stderr)
    return skipped
