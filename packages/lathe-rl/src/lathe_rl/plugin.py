"""lathe hook implementations for preference fine-tuning (``rl:``)."""

from __future__ import annotations

import re
from typing import Any

from lathe.hookspecs import hookimpl
from lathe_rl.config import (
    RL_METHODS,
    RLConfig,
    grpo_problems,
    method_of,
    method_problems,
    setting_of,
)


@hookimpl
def lathe_config_model() -> type[RLConfig]:
    return RLConfig


@hookimpl
def lathe_validate_config(cfg: Any) -> list[str]:
    method = method_of(cfg)
    if method is None:  # enabled without a method (plugins: [rl] beside others): every hook stays out of the way
        set_keys = [k for k in RLConfig.model_fields if getattr(cfg, k) not in (None, False)]
        return [f"{k}: read only with rl: set rl (dpo, ipo, kto, orpo, simpo, cpo or grpo), reward_model or "
                "process_reward_model" for k in set_keys]
    problems = method_problems(cfg)
    if cfg.dpo_beta is not None and cfg.rl_beta is not None and cfg.dpo_beta != cfg.rl_beta:
        problems.append("dpo_beta: the old name of rl_beta, set to another value; keep only rl_beta")
    if method in RL_METHODS:
        problems += grpo_problems(cfg)
    if cfg.sample_packing:
        problems.append(f"sample_packing: {setting_of(method)} rows cannot be packed; remove it")
    return problems


@hookimpl
def lathe_pre_model_load(cfg: Any) -> None:
    """Before any data is read: every dataset must be of a preference type (an SFT type's rows
    have no rejected completion). Checked here, not at validation, so configs that only
    validate (``lathe validate``, ``lathe inference``) keep their datasets as they are."""
    from lathe.errors import LatheError

    method = method_of(cfg)
    if method is None:
        return
    names = _dataset_types(method)
    for where, entries in (("datasets", cfg.datasets or []), ("test_datasets", cfg.test_datasets or [])):
        for i, entry in enumerate(entries):
            if entry.type not in names and not (method == "grpo" and _user_transform(entry.type)):
                raise LatheError(f"{where}[{i}].type: {entry.type!r} is not a dataset type for {setting_of(method)}; "
                                 f"use one of {', '.join(sorted(names))}")


def _user_transform(name: Any) -> bool:
    """``module.function``: a transform in the user's ``module.py`` (Axolotl's GRPO dataset types)."""
    return isinstance(name, str) and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", name) is not None


@hookimpl
def lathe_dataset_type(cfg: Any, name: str) -> Any:
    """Axolotl's GRPO ``type: rewards.gsm8k_transform``: a transform function in the user's file
    (cfg is None when only the raw config is checked: the type is then taken as such a name)."""
    if (cfg is not None and method_of(cfg) != "grpo") or not _user_transform(name):
        return None
    from lathe_rl.grpo import AxolotlTransform

    return AxolotlTransform


def _dataset_types(method: str) -> list[str]:
    from lathe_rl.strategies import preference_strategies

    if method == "grpo":
        return ["grpo.chat_template"]
    if method == "prm":
        return ["stepwise_supervised"]
    names = list(preference_strategies())
    return [*names, "bradley_terry.chat_template"] if method == "reward" else names


@hookimpl
def lathe_model_class(cfg: Any) -> tuple[type, dict[str, Any]] | None:
    """A reward model's head: sequence classification (one score), or token classification for a
    process reward model (num_labels, default 2)."""
    method = method_of(cfg)
    if method not in ("reward", "prm"):
        return None
    import transformers

    if method == "reward":
        return transformers.AutoModelForSequenceClassification, {"num_labels": 1}
    return transformers.AutoModelForTokenClassification, {"num_labels": cfg.num_labels or 2}


@hookimpl
def lathe_prompt_strategies() -> dict[str, Any]:
    from lathe_rl.grpo import PromptOnly
    from lathe_rl.reward import reward_strategies
    from lathe_rl.strategies import preference_strategies

    return {**preference_strategies(), **reward_strategies(), "grpo.chat_template": PromptOnly}


@hookimpl
def lathe_trainer_cls(cfg: Any) -> Any:
    if method_of(cfg) is None:
        return None
    from lathe_rl.trainer import trainer_for

    return trainer_for(cfg)


@hookimpl
def lathe_collator(cfg: Any, tokenizer: Any) -> Any:
    if method_of(cfg) in (None, "prm"):  # a process reward model's rows are ordinary labelled sequences
        return None
    from lathe.data.collate import pad_id_of
    from lathe_rl.collate import PreferenceCollator

    return PreferenceCollator(pad_id_of(tokenizer), cfg.sequence_len)


@hookimpl
def lathe_generate(cfg: Any, model: Any, tokenizer: Any, prompt: str) -> str | None:
    """A reward model scores instead of generating: ``lathe inference`` prints the reward of the
    text as typed (reward_model) or the class of each step end (process_reward_model)."""
    method = method_of(cfg)
    if method not in ("reward", "prm"):
        return None
    from lathe_rl.reward import score_text

    return score_text(cfg, model, tokenizer, prompt)

