"""The keys lathe-rl adds to the config (Axolotl's names and meanings).

``beta`` is read as Axolotl reads it: ``trl.beta``, else ``rl_beta`` (``dpo_beta`` is its old
name), else ``orpo_alpha``, else TRL's default 0.1. For ORPO that beta is the weight λ of the
odds-ratio term (TRL reuses the name).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lathe.config import ConfigModel

RLMethod = Literal["dpo", "ipo", "kto", "orpo", "simpo", "cpo"]
DEFAULT_BETA = 0.1

# Axolotl's trl: keys lathe-rl does not read, with the reason (a clear error instead of silence).
_TRL_NOT_YET = "belongs to GRPO, which lathe-rl does not provide yet"
TRL_REFUSED: dict[str, str] = {
    name: _TRL_NOT_YET
    for name in (
        "loss_type", "num_generations", "max_completion_length", "reward_funcs", "reward_weights",
        "temperature", "use_vllm", "vllm_mode", "vllm_server_host", "vllm_server_port", "vllm_server_timeout",
        "vllm_guided_decoding_regex", "generation_batch_size", "log_completions", "num_completions_to_print",
        "importance_sampling_level", "scale_rewards", "top_p", "top_k", "min_p", "repetition_penalty",
        "generation_kwargs", "chat_template_kwargs", "num_iterations", "epsilon", "epsilon_high",
        "mask_truncated_completions", "rollout_func", "multi_objective_aggregation",
    )
}
TRL_REFUSED.update(dict.fromkeys(
    ("sync_ref_model", "ref_model_mixup_alpha", "ref_model_sync_steps"),
    "a reference model synced to the policy during training (TR-DPO) is not available in lathe-rl",
))


class TRLSection(ConfigModel):
    """Axolotl's ``trl:`` block (the keys lathe-rl reads)."""

    beta: float | None = Field(None, gt=0, description="Beta of the preference loss; wins over rl_beta.")

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in TRL_REFUSED and data[key] is not None:
                    raise ValueError(f"trl.{key}: {TRL_REFUSED[key]}")
        return data


class RLConfig(ConfigModel):
    rl: RLMethod | None = Field(
        None, description="Preference method: dpo, ipo, kto, orpo, simpo or cpo (Axolotl's values; cpo is TRL's CPO)."
    )
    rl_beta: float | None = Field(None, gt=0, description="Beta of the preference loss (TRL default 0.1).")
    dpo_beta: float | None = Field(None, gt=0, description="Axolotl's old name of rl_beta.")
    trl: TRLSection | None = Field(None, description="TRL settings block (beta).")
    dpo_label_smoothing: float | None = Field(
        None, ge=0, lt=0.5, description="rl: dpo only: probability that a preference label is flipped (cDPO)."
    )
    dpo_use_weighting: bool | None = Field(
        None, description="rl: dpo/ipo: weight each pair by its probability under the policy (WPO)."
    )
    orpo_alpha: float | None = Field(None, gt=0, description="rl: orpo: weight λ of the odds-ratio term.")
    simpo_gamma: float | None = Field(None, ge=0, description="rl: simpo: target reward margin (TRL default 0.5).")
    cpo_alpha: float | None = Field(
        None, ge=0, description="rl: simpo/cpo: weight of the NLL (behaviour cloning) term on chosen (TRL default 1.0)."
    )
    kto_desirable_weight: float | None = Field(None, gt=0, description="rl: kto: weight of desirable rows (default 1.0).")
    kto_undesirable_weight: float | None = Field(
        None, gt=0, description="rl: kto: weight of undesirable rows (default 1.0)."
    )
    max_prompt_len: int | None = Field(
        None, gt=0, description="Prompt tokens kept (the last ones) in preference rows; default: no limit."
    )
    ref_model: str | None = Field(
        None,
        description="Reference model (path or hub id) for dpo/ipo/kto; default: a frozen copy of the starting "
        "model, or under LoRA the base with the adapter disabled.",
    )


def beta_of(cfg: Any) -> float:
    """The beta Axolotl passes to TRL: trl.beta, rl_beta (or dpo_beta), orpo_alpha, else 0.1."""
    for value in (cfg.trl.beta if cfg.trl else None, cfg.rl_beta, cfg.dpo_beta, cfg.orpo_alpha):
        if value is not None:
            return float(value)
    return DEFAULT_BETA


# key → the rl: values that read it; set with any other method it would be ignored, so it is refused.
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "dpo_label_smoothing": ("dpo",),
    "dpo_use_weighting": ("dpo", "ipo"),
    "orpo_alpha": ("orpo",),
    "simpo_gamma": ("simpo",),
    "cpo_alpha": ("simpo", "cpo"),
    "kto_desirable_weight": ("kto",),
    "kto_undesirable_weight": ("kto",),
    "ref_model": ("dpo", "ipo", "kto"),
}
