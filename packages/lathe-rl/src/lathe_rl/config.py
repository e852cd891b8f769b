"""The keys lathe-rl adds to the config (Axolotl's names and meanings).

``beta`` is read as Axolotl reads it: ``trl.beta``, else ``rl_beta`` (``dpo_beta`` is its old
name), else ``orpo_alpha``, else TRL's default 0.1. For ORPO that beta is the weight λ of the
odds-ratio term (TRL reuses the name).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from lathe.config import ConfigModel

RLMethod = Literal["dpo", "ipo", "kto", "orpo", "simpo", "cpo", "grpo"]
RL_METHODS: tuple[str, ...] = get_args(RLMethod)
# the other two things lathe-rl trains, named by the key that asks for them (method name → key)
HEAD_KEYS: dict[str, str] = {"reward": "reward_model", "prm": "process_reward_model"}
DEFAULT_BETA = 0.1

# Axolotl's trl: keys lathe-rl does not read, with the reason (a clear error instead of silence).
_VLLM = "vLLM generation is not available in lathe-rl; GRPO generates in-process (remove it)"
TRL_REFUSED: dict[str, str] = dict.fromkeys(
    ("vllm_mode", "vllm_server_host", "vllm_server_port", "vllm_server_timeout", "vllm_guided_decoding_regex",
     "vllm_enable_sleep_mode", "vllm_importance_sampling_correction", "vllm_importance_sampling_mode",
     "vllm_importance_sampling_cap", "vllm_importance_sampling_clip_min", "vllm_importance_sampling_clip_max",
     "vllm_lora_sync", "vllm_sync_interval"),
    _VLLM,
)
TRL_REFUSED.update(dict.fromkeys(
    ("sync_ref_model", "ref_model_mixup_alpha", "ref_model_sync_steps"),
    "a reference model synced to the policy during training (TR-DPO) is not available in lathe-rl",
))
_GRPO_NOT_YET = "this GRPO option is not available in lathe-rl yet"
TRL_REFUSED.update(dict.fromkeys(
    ("generation_batch_size", "importance_sampling_level", "scale_rewards", "top_p", "top_k", "min_p",
     "repetition_penalty", "generation_kwargs", "chat_template_kwargs", "num_iterations", "epsilon", "epsilon_high",
     "mask_truncated_completions", "rollout_func", "multi_objective_aggregation", "use_liger_loss", "entropy_coef",
     "use_adaptive_entropy", "entropy_target", "entropy_coef_delta", "entropy_coef_min", "entropy_coef_max",
     "off_policy_mask_threshold", "use_bias_correction_kl", "reward_num_workers", "replay_buffer_size",
     "replay_recompute_logps", "reroll_start_fraction", "reroll_max_groups", "skip_zero_advantage_batches",
     "use_data_producer", "async_prefetch", "prefetch_depth", "streaming_partial_batch", "streaming_min_groups",
     "log_multimodal", "log_completions", "num_completions_to_print"),
    _GRPO_NOT_YET,
))
# trl: keys read only by rl: grpo
GRPO_KEYS = ("loss_type", "num_generations", "max_completion_length", "reward_funcs", "reward_weights",
             "temperature", "use_vllm")


class TRLSection(ConfigModel):
    """Axolotl's ``trl:`` block (the keys lathe-rl reads)."""

    beta: float | None = Field(None, ge=0, description="Beta of the loss (KL weight for grpo); wins over rl_beta.")
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] | None = Field(
        None, description="rl: grpo: how token losses are averaged (default dapo)."
    )
    num_generations: int | None = Field(None, ge=2, description="rl: grpo: completions per prompt (default 8).")
    max_completion_length: int | None = Field(None, gt=0, description="rl: grpo: new tokens per completion (default 256).")
    reward_funcs: list[str] | None = Field(
        None, description="rl: grpo: reward functions: built-ins (length, think_format) or module.function."
    )
    reward_weights: list[float] | None = Field(None, description="rl: grpo: weight of each reward function (default 1).")
    temperature: float | None = Field(None, gt=0, description="rl: grpo: sampling temperature (default 1.0).")
    use_vllm: bool = Field(False, description="rl: grpo: vLLM generation; not available (true is an error).")

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
        None, description="Method: dpo, ipo, kto, orpo, simpo, grpo (Axolotl's values) or cpo (TRL's CPO)."
    )
    rl_beta: float | None = Field(None, gt=0, description="Beta of the preference loss (TRL default 0.1).")
    dpo_beta: float | None = Field(None, gt=0, description="Axolotl's old name of rl_beta.")
    trl: TRLSection | None = Field(None, description="TRL settings block (beta; GRPO's generation and rewards).")
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
    reward_model: bool | None = Field(
        None, description="Train a reward model: a sequence-classification head scoring a whole conversation, "
        "Bradley-Terry loss on chosen/rejected pairs (bradley_terry.chat_template or a preference type).")
    process_reward_model: bool | None = Field(
        None, description="Train a process reward model: a token-classification head labelling the last token of "
        "each reasoning step, cross-entropy (stepwise_supervised datasets).")
    num_labels: int | None = Field(
        None, ge=1, description="Classes of the reward head: 1 for reward_model (the default; a scalar score), "
        "default 2 for process_reward_model.")
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="reward_model: weight of the mean-zero reward term (Eisenstein et al. 2023), "
        "added to the loss as coefficient × mean((r_chosen + r_rejected)²); 0.01 is usual.")
    ref_model: str | None = Field(
        None,
        description="Reference model (path or hub id) for dpo/ipo/kto; default: a frozen copy of the starting "
        "model, or under LoRA the base with the adapter disabled.",
    )


def method_of(cfg: Any) -> str | None:
    """What this run trains: the ``rl:`` value, ``reward`` (reward_model), ``prm`` (process_reward_model), or None."""
    if cfg.rl is not None:
        return str(cfg.rl)
    return next((method for method, key in HEAD_KEYS.items() if getattr(cfg, key)), None)


def setting_of(method: str) -> str:
    """The key and value that chose ``method``, for messages."""
    return f"{HEAD_KEYS[method]}: true" if method in HEAD_KEYS else f"rl: {method}"


def method_problems(cfg: Any) -> list[str]:
    """Two things to train at once, and keys read by another method than this run's."""
    chosen = ([f"rl: {cfg.rl}"] if cfg.rl else []) + [f"{key}: true" for key in HEAD_KEYS.values() if getattr(cfg, key)]
    if len(chosen) > 1:
        return [f"{chosen[1].split(':')[0]}: {' and '.join(chosen)} ask for two trainings at once; keep one"]
    method = method_of(cfg)
    problems = []
    for key, methods in ONLY_FOR.items():
        if getattr(cfg, key) is not None and method not in methods:
            rl = [m for m in methods if m in RL_METHODS]
            needs = ([f"rl: {' or '.join(rl)}"] if rl else []) + [setting_of(m) for m in methods if m in HEAD_KEYS]
            problems.append(f"{key}: only read with {' or '.join(needs)} ({setting_of(method or '').replace(':', ' is', 1)}); remove it")
    if method == "reward" and cfg.num_labels not in (None, 1):
        problems.append(f"num_labels: reward_model scores each conversation with one number (Bradley-Terry); "
                        f"num_labels must be 1, not {cfg.num_labels}")
    return problems


def beta_of(cfg: Any) -> float:
    """The beta Axolotl passes to TRL: trl.beta, rl_beta (or dpo_beta), orpo_alpha, else TRL's
    default (0.1; 0 for grpo, which then needs no reference model)."""
    for value in (cfg.trl.beta if cfg.trl else None, cfg.rl_beta, cfg.dpo_beta, cfg.orpo_alpha):
        if value is not None:
            return float(value)
    return 0.0 if cfg.rl == "grpo" else DEFAULT_BETA


def grpo_problems(cfg: Any) -> list[str]:
    """The trl: block against rl: (GRPO's keys only with grpo; grpo needs reward functions)."""
    trl = cfg.trl
    if cfg.rl != "grpo":
        given = [k for k in GRPO_KEYS if trl is not None and getattr(trl, k) not in (None, False)]
        return [f"trl.{k}: only read with rl: grpo (rl is {cfg.rl}); remove it" for k in given]
    problems = []
    if trl is None or not trl.reward_funcs:
        problems.append("trl.reward_funcs: rl: grpo needs at least one reward function")
    elif trl.reward_weights is not None and len(trl.reward_weights) != len(trl.reward_funcs):
        problems.append(f"trl.reward_weights: {len(trl.reward_weights)} weights for {len(trl.reward_funcs)} reward_funcs")
    if trl is not None and trl.use_vllm:
        problems.append("trl.use_vllm: vLLM generation is not available in lathe-rl (pip install vllm would not "
                        "help); remove it: GRPO generates in-process")
    return problems


# key → the rl: values that read it; set with any other method it would be ignored, so it is refused.
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "dpo_label_smoothing": ("dpo",),
    "dpo_use_weighting": ("dpo", "ipo"),
    "orpo_alpha": ("orpo",),
    "simpo_gamma": ("simpo",),
    "cpo_alpha": ("simpo", "cpo"),
    "kto_desirable_weight": ("kto",),
    "kto_undesirable_weight": ("kto",),
    "ref_model": ("dpo", "ipo", "kto", "grpo"),
    "rl_beta": RL_METHODS,
    "dpo_beta": RL_METHODS,
    "trl": RL_METHODS,
    "max_prompt_len": (*RL_METHODS, "reward"),
    "num_labels": ("reward", "prm"),
    "center_rewards_coefficient": ("reward",),
}
