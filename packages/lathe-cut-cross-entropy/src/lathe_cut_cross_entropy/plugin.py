"""lathe hook implementations for Cut Cross Entropy."""

from __future__ import annotations

from typing import Any

from lathe.hookspecs import hookimpl
from lathe_cut_cross_entropy.config import CutCrossEntropyConfig


@hookimpl
def lathe_config_model() -> type[CutCrossEntropyConfig]:
    return CutCrossEntropyConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    problems = []
    if cfg.cut_cross_entropy and cfg.cut_cross_entropy_impl == "cce" and not (cfg.bf16 or cfg.fp16):
        problems.append(
            "cut_cross_entropy_impl: cce needs bf16 or fp16 training for its backward pass; "
            "set bf16: true or fp16: true, or cut_cross_entropy_impl: torch_compile"
        )
    return problems


@hookimpl
def lathe_hidden_states_loss(cfg: Any) -> Any:
    if not cfg.cut_cross_entropy:
        return None
    from lathe_cut_cross_entropy.loss import CutCrossEntropyLoss

    return CutCrossEntropyLoss(cfg.cut_cross_entropy_impl)
