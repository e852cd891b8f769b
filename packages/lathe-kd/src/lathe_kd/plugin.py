"""lathe hook implementations for knowledge distillation."""

from __future__ import annotations

from typing import Any

from lathe.hookspecs import hookimpl
from lathe_kd.config import KDConfig


@hookimpl
def lathe_config_model() -> type[KDConfig]:
    return KDConfig


@hookimpl
def lathe_prompt_strategies() -> dict[str, Any]:
    from lathe_kd.strategy import KDChatTemplateStrategy

    # the second name is how Axolotl configs spell the type
    return {"kd.chat_template": KDChatTemplateStrategy, "axolotl.integrations.kd.chat_template": KDChatTemplateStrategy}


@hookimpl
def lathe_hidden_states_loss(cfg: Any) -> Any:
    if not cfg.kd_trainer:
        return None
    from lathe_kd.hidden import KDHiddenLoss

    return KDHiddenLoss(cfg)


@hookimpl
def lathe_collator(cfg: Any, tokenizer: Any) -> Any:
    from lathe.data.collate import build_collator
    from lathe_kd.collate import KDCollator

    return KDCollator(build_collator(cfg, tokenizer), cfg.kd_trainer, tokenizer.padding_side == "left")
