"""lathe hook implementations for preference fine-tuning (``rl:``)."""

from __future__ import annotations

from typing import Any

from lathe.hookspecs import hookimpl
from lathe_rl.config import ONLY_FOR, RLConfig, grpo_problems


@hookimpl
def lathe_config_model() -> type[RLConfig]:
    return RLConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    if cfg.rl is None:  # enabled without a method (plugins: [rl] beside others): every hook stays out of the way
        set_keys = [k for k in RLConfig.model_fields if k != "rl" and getattr(cfg, k) is not None]
        return [f"{k}: read only with rl: set rl (dpo, ipo, kto, orpo, simpo, cpo or grpo)" for k in set_keys]
    problems = [
        f"{key}: only read with rl: {' or '.join(methods)} (rl is {cfg.rl}); remove it"
        for key, methods in ONLY_FOR.items()
        if getattr(cfg, key) is not None and cfg.rl not in methods
    ]
    if cfg.dpo_beta is not None and cfg.rl_beta is not None and cfg.dpo_beta != cfg.rl_beta:
        problems.append("dpo_beta: the old name of rl_beta, set to another value; keep only rl_beta")
    problems += grpo_problems(cfg)
    if cfg.sample_packing:
        problems.append("sample_packing: preference rows (chosen and rejected) cannot be packed; remove it")
    return problems


@hookimpl
def lathe_pre_model_load(cfg: Any) -> None:
    """Before any data is read: every dataset must be of a preference type (an SFT type's rows
    have no rejected completion). Checked here, not at validation, so configs that only
    validate (``lathe validate``, ``lathe inference``) keep their datasets as they are."""
    from lathe.errors import LatheError
    from lathe_rl.strategies import preference_strategies

    if cfg.rl is None:
        return
    names = ["grpo.chat_template"] if cfg.rl == "grpo" else list(preference_strategies())
    for where, entries in (("datasets", cfg.datasets or []), ("test_datasets", cfg.test_datasets or [])):
        for i, entry in enumerate(entries):
            if entry.type not in names:
                raise LatheError(f"{where}[{i}].type: {entry.type!r} is not a preference dataset type; with rl: "
                                 f"{cfg.rl} use one of {', '.join(sorted(names))}")


@hookimpl
def lathe_prompt_strategies() -> dict[str, Any]:
    from lathe_rl.grpo import PromptOnly
    from lathe_rl.strategies import preference_strategies

    return {**preference_strategies(), "grpo.chat_template": PromptOnly}


@hookimpl
def lathe_trainer_cls(cfg: Any) -> Any:
    if cfg.rl is None:
        return None
    from lathe_rl.trainer import trainer_for

    return trainer_for(cfg)


@hookimpl
def lathe_collator(cfg: Any, tokenizer: Any) -> Any:
    if cfg.rl is None:
        return None
    from lathe.data.collate import pad_id_of
    from lathe_rl.collate import PreferenceCollator

    return PreferenceCollator(pad_id_of(tokenizer), cfg.sequence_len)
