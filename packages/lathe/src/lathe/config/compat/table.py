"""What lathe does with each of Axolotl's config keys: the explicit entries.

Every key in ``axolotl_keys.json`` (Axolotl's own schema, see ``scripts/axolotl_keys.py``) gets
exactly one status (:mod:`lathe.config.compat.status` computes it, a test checks it):

- **implemented in core**: derived, never listed here: a field of lathe's core schema has the name.
- **implemented by a plugin**: the key's Axolotl integration, or an entry of ``CORE_KEYS_IN_PLUGINS``,
  names a lathe plugin that ``PLUGINS`` marks available; ``tests/test_axolotl_plugin_keys.py`` checks
  the installed plugin's config model defines it.
- **alias** (``ALIASES``), **no-op** (``NO_OPS``) or **refused** (``REFUSED``): listed below.

How to change a status:
- a plugin lands: flip its line in ``PLUGINS`` to True (one line). Keys of it that the plugin does
  not implement go into ``REFUSED`` with a reason.
- a key becomes a core field: delete its entry here (a test fails, naming the entry, until you do).
- a deliberate difference from Axolotl's meaning: add a row to ``differences.py``.
"""

from __future__ import annotations

from typing import NamedTuple

# lathe plugin → whether it exists. Flip to True when the plugin lands.
PLUGINS: dict[str, bool] = {
    "grokfast": True,
    "kd": True,
    "spectrum": True,
    "densemixer": True,
    "diffusion": True,
    "liger": True,
    "cut_cross_entropy": True,
    "swanlab": True,
    "lm_eval": True,
    "llmcompressor": True,
    "rl": True,
    "torchao": True,
}

# Axolotl integration (its folder under axolotl/integrations) → the lathe plugin for its keys.
# None: lathe has no plan for it; its keys are refused with the reason in INTEGRATION_REASONS.
INTEGRATIONS: dict[str, str | None] = {
    "grokfast": "grokfast",
    "kd": "kd",
    "spectrum": "spectrum",
    "densemixer": "densemixer",
    "diffusion": "diffusion",
    "liger": "liger",
    "cut_cross_entropy": "cut_cross_entropy",
    "swanlab": "swanlab",
    "lm_eval": "lm_eval",
    "llm_compressor": "llmcompressor",
    "expert_parallel": None,
    "hatchery": None,
    "kernels": None,
    "mora": None,
    "nemo_gym": None,
}
INTEGRATION_REASONS: dict[str, str] = {
    "expert_parallel": "expert parallelism (experts placed on different GPUs) is not available; shard MoE models with FSDP2 or DeepSpeed ZeRO-3 (docs/distributed.md)",
    "hatchery": "training through a remote Tinker/Hatchery service is not available in lathe",
    "kernels": "lathe reads use_scattermoe and use_sonicmoe in core (docs/moe.md); Axolotl's other kernel patches "
               "(DeepSeek-V4, GLM DSA, Gemma-4, NVFP4, its bnb-MoE fast paths, expert_backend) are not available",
    "mora": "the MoRA adapter is not available in lathe; use adapter: lora",
    "nemo_gym": "NeMo Gym environments belong to RL training, which is not available yet",
}

# Axolotl core keys that lathe implements in a plugin (the plugin is enabled by the key, DESIGN §6).
_RL_KEYS = (
    "rl", "trl", "rl_beta", "dpo_beta", "dpo_label_smoothing", "dpo_use_weighting", "orpo_alpha",
    "kto_desirable_weight", "kto_undesirable_weight", "simpo_gamma", "cpo_alpha", "max_prompt_len",
    "reward_model", "process_reward_model", "num_labels", "center_rewards_coefficient",
)
_TORCHAO_KEYS = ("qat", "quantization", "fp8", "fp8_config", "fp8_enable_fsdp_float8_all_gather")
CORE_KEYS_IN_PLUGINS: dict[str, str] = {**dict.fromkeys(_RL_KEYS, "rl"), **dict.fromkeys(_TORCHAO_KEYS, "torchao")}
# Values of ``rl:`` and RL dataset types that lathe-rl provides (its tests check both lists).
RL_METHODS: frozenset[str] = frozenset({"dpo", "ipo", "kto", "orpo", "simpo", "grpo"})
RL_DATASET_TYPES: frozenset[str] = frozenset(
    {f"{fmt}.{variant}" for fmt in ("chatml", "llama3") for variant in ("default", "intel", "prompt_pairs", "ultra", "argilla_chat")}
    | {"chat_template.default"}
)
# Dataset types of reward_model / process_reward_model that lathe-rl provides.
REWARD_DATASET_TYPES: frozenset[str] = frozenset({"bradley_terry.chat_template", "stepwise_supervised"})

# Axolotl key → the lathe key that means the same. The Axolotl spelling works, with a warning.
ALIASES: dict[str, str] = {
    "model_revision": "revision_of_model",
    "model_config": "overrides_of_model_config",
    "model_kwargs": "overrides_of_model_kwargs",
    "type_of_model": "model_type",
    "dataset_num_proc": "dataset_processes",
    "pretrain_multipack_buffer_size": "streaming_multipack_buffer_size",
    "noisy_embedding_alpha": "neftune_noise_alpha",  # Axolotl copies it over, deprecated
    "evaluation_strategy": "eval_strategy",  # transformers' old name; Axolotl only warns it is deprecated
    # older Axolotl spellings, no longer in its schema
    "eval_strategy_steps": "eval_steps",
    "lora_target_linear_modules": "lora_target_linear",
    "gradient_checkpointing_args": "gradient_checkpointing_kwargs",
}


class NoOp(NamedTuple):
    """A key lathe already behaves as asked for: warns once. ``only`` limits the values that are
    no-ops (others are refused with ``why`` as the reason); None means any value."""

    why: str
    only: tuple[object, ...] | None = None


_DERIVED = "a value Axolotl computes for itself; lathe computes its own"
_PACKING_TUNING = "a tuning knob of Axolotl's packer; lathe's packer needs none"
_FUSED = "a fused-kernel speed option with the same result; lathe's default kernels compute the same"
NO_OPS: dict[str, NoOp] = {
    "strict": NoOp("Axolotl's strict mode; lathe always refuses unknown keys"),
    "pretrain_multipack_attn": NoOp(
        "packed pretraining windows never attend each other in lathe (true); attending across them is not "
        "available", only=(True,)),
    "debug": NoOp("use `lathe preprocess --debug` to see the masks"),
    "local_rank": NoOp("set by the launcher, not the config"),
    "is_preprocess": NoOp("set by Axolotl's preprocess command; `lathe preprocess` exists"),
    "axolotl_config_path": NoOp("set by Axolotl itself"),
    "is_llama_derived_model": NoOp("lathe reads the model family from the model's config"),
    "is_mistral_derived_model": NoOp("lathe reads the model family from the model's config"),
    "is_qwen_derived_model": NoOp("lathe reads the model family from the model's config"),
    "is_falcon_derived_model": NoOp("lathe reads the model family from the model's config"),
    "sample_packing_eff_est": NoOp(_DERIVED),
    "total_num_tokens": NoOp(_DERIVED),
    "total_supervised_tokens": NoOp(_DERIVED),
    "sample_packing_bin_size": NoOp(_PACKING_TUNING),
    "sample_packing_group_size": NoOp(_PACKING_TUNING),
    "sample_packing_mp_start_method": NoOp(_PACKING_TUNING),
    "multipack_real_batches": NoOp(_PACKING_TUNING),
    "flash_attn_cross_entropy": NoOp(_FUSED),
    "flash_attn_fuse_mlp": NoOp(_FUSED),
    "flash_attn_fuse_qkv": NoOp(_FUSED),
    "flash_optimum": NoOp(_FUSED),
    "save_safetensors": NoOp("lathe always saves safetensors", only=(True,)),
    "include_tokens_per_second": NoOp("lathe always logs tokens_per_second", only=(True,)),
    "include_tkps": NoOp("lathe always logs tokens_per_second", only=(True,)),
    "remove_unused_columns": NoOp("lathe keeps only the columns a prompt strategy produces", only=(False, True)),
    "hf_use_auth_token": NoOp("lathe uses HF_TOKEN, your saved Hugging Face login or hub_token whenever the hub needs one"),
    "low_cpu_mem_usage": NoOp("transformers always loads with low CPU memory use", only=(True,)),
    "world_size": NoOp("set by the launcher (WORLD_SIZE), not the config: lathe train --launcher torchrun --num-processes N"),
    "eval_table_size": NoOp("Axolotl deprecated it (superseded by generate_samples)"),
    "eval_max_new_tokens": NoOp("Axolotl deprecated it (superseded by generate_samples)"),
    "resize_token_embeddings_to_32x": NoOp("lathe resizes embeddings to the vocabulary size", only=(False,)),
    "mean_resizing_embeddings": NoOp("lathe initialises added token embeddings itself", only=(False,)),
}

_NOT_YET = "not implemented in lathe yet"
_KD_ONLINE = "an online teacher server is not available in lathe-kd yet; store the teacher's top-k logprobs in the dataset"
_MULTI_GPU = "this multi-GPU option is not available yet (lathe runs DDP, FSDP and N-D parallelism through accelerate: docs/distributed.md)"
_DEVICE_MAP = "placing one model across devices is not available yet; lathe loads the model on one device"
_HUB = "pushing the prepared dataset to the hub is not available; `lathe preprocess` caches it locally"
_GRADIO = "the Gradio UI is not available; use `lathe inference`"
_TRACKER = "this experiment tracker is not available; use wandb_*, mlflow_* or use_tensorboard"
_AXOLOTL_GONE = "Axolotl itself no longer accepts it"
_ROLE_MARKERS = ("lathe masks vision-language rows by the chat template's turns, as text rows (docs/multimodal.md), "
                 "so per-role token markers are not needed")
_QUANT = "this quantization path is not available yet; use load_in_4bit / load_in_8bit (bitsandbytes)"
_QGALORE = "the q_galore_adamw8bit optimizer is not available (see docs/training.md#optimizers)"
_DION = "the dion optimizer is not available (see docs/training.md#optimizers)"
_GENERATION = "sample generation during training is not available yet; use `lathe inference` on a checkpoint"
_MEMORY = "this memory-saving path is not available yet; use gradient_checkpointing or activation_offloading"
_LORA_KERNELS = (
    "peft's LoRA embedding already keeps only the token ids and a rank-r lookup for backward, so a fused "
    "embedding kernel would save nothing; LoRA embeddings train with peft's module (same result)"
)
_PEFT_NY = "this PEFT option is not available in lathe yet"
_EMBED = "this embedding-handling option is not available in lathe yet"
_EVAL_NY = "this evaluation option is not available yet; lathe reports eval loss"

_GROUPS: dict[str, tuple[str, ...]] = {
    _MULTI_GPU: (
        "heads_k_stride", "ring_attn_func",
        "qlora_sharded_model_loading",
    ),
    _DEVICE_MAP: ("device_map", "max_memory", "gpu_memory_limit", "lora_on_cpu", "device", "experimental_skip_move_to_device"),
    _HUB: ("push_dataset_to_hub",),
    _GRADIO: ("gradio_max_new_tokens", "gradio_server_name", "gradio_server_port", "gradio_share", "gradio_temperature", "gradio_title"),
    _TRACKER: (
        "use_comet", "comet_api_key", "comet_experiment_config", "comet_experiment_key", "comet_mode", "comet_online",
        "comet_project_name", "comet_workspace", "use_trackio", "trackio_project_name", "trackio_run_name",
        "trackio_space_id", "use_otel_metrics", "otel_metrics_host", "otel_metrics_port", "hf_mlflow_log_artifacts",
        "wandb_watch",
    ),
    _AXOLOTL_GONE: (
        "max_packed_sequence_len", "s2_attention", "flash_attn_rms_norm", "dpo_use_logits_to_keep",
        "dpo_generate_during_eval", "dpo_norm_loss", "rpo_alpha",
    ),
    _ROLE_MARKERS: ("role_boundaries",),
    "a custom config class is not available; lathe reads the model config with AutoConfig (base_model_config "
    "names another folder)": ("cls_model_config",),
    _QUANT: (
        "model_quantization_config",
        "model_quantization_config_kwargs", "bnb_config_kwargs", "use_onebitllms",
    ),
    "LoRA on a GPTQ-quantized base is not available: gptqmodel 7.7.0 (its current release) "
    "requires torch>=2.14.1 and lathe is built on torch 2.13; use load_in_4bit (QLoRA)": ("gptq",),
    _QGALORE: (
        "qgalore_cos_threshold", "qgalore_gamma_proj", "qgalore_proj_bits", "qgalore_proj_group_size",
        "qgalore_proj_quant", "qgalore_proj_type", "qgalore_queue_size", "qgalore_rank", "qgalore_scale",
        "qgalore_update_proj_gap",
    ),
    _DION: ("dion_lr", "dion_momentum", "dion_rank_fraction", "dion_rank_multiple_of"),
    _GENERATION: (
        "generate_samples", "generation_do_sample", "generation_max_new_tokens", "generation_prompt_ratio",
        "generation_temperature", "generation_top_k", "generation_top_p", "num_generation_samples",
    ),
    _MEMORY: (
        "ple_cpu_offload",
    ),
    "checkpointing chosen ops or a chosen share of layers is not available yet; use gradient_checkpointing "
    "(every decoder layer recomputed) with activation_offloading": ("selective_checkpointing", "dynamic_checkpoint"),
    _LORA_KERNELS: ("lora_embedding_kernel",),
    _PEFT_NY: (
        "peft", "relora",
        "relora_cpu_offload", "relora_prune_method", "relora_prune_ratio", "merge_lora", "merge_method",
    ),
    _EMBED: (
        "added_tokens_overrides", "shrink_embeddings", "embeddings_skip_upcast", "fix_untrained_tokens",
        "reinit_weights", "tokenizer_legacy", "fp32_norm_classes", "fp32_norms",
    ),
    _EVAL_NY: (
        "do_causal_lm_eval", "eval_causal_lm_metrics", "do_bench_eval", "bench_dataset", "bench_split",
        "eval_sequence_len",
    ),
    "attention backends other than eager, sdpa, flex_attention and flash_attention_2/3 are not available; "
    "use attn_implementation": (
        "xformers_attention", "sage_attention", "flash_attn_d512", "sdpa_varlen", "fused_attn_kernel",
        "large_head_attention", "gemma4_hybrid_attn_impl", "llama4_linearized_experts",
        "scaling_softmax", "scaling_softmax_bias", "scaling_softmax_factor", "flex_attn_compile_kwargs",
    ),
    _NOT_YET: (
        "lr_div_factor", "jagged_restart_steps", "jagged_restart_warmup_steps", "jagged_restart_anneal_steps",
        "lisa_n_layers", "lisa_step_interval", "lisa_layers_attribute", "use_pose", "pose_split_on_token_ids",
        "pose_max_context_len", "pose_num_chunks", "sample_packing_sequentially",
        "batch_flattening", "pad_to_multiple_of",
        "dataset_keep_in_memory", "dataset_shard_num", "dataset_shard_idx", "num_dataset_shards_to_save",
        "shuffle_before_merging_datasets", "preprocess_iterable",
        "chat_template_kwargs", "tokenizer_save_jinja_files",
        "accelerator_config", "profiler_steps", "profiler_steps_start", "trainer_cls",
        "use_eaft", "eaft_alpha", "eaft_k", "torchdistx_path", "bfloat16", "float16", "float32",
    ),
}

# Axolotl key → why lathe refuses it, and what to do instead.
REFUSED: dict[str, str] = {key: reason for reason, keys in _GROUPS.items() for key in keys}
_RL_NOT_YET = "not available in lathe-rl yet"
REFUSED.update({
    "vllm": "a vLLM server for generation is not available in lathe-rl (GRPO generates in-process)",
    "ebft": "energy-based fine-tuning (rl: ebft) is not available in lathe-rl",
    "dpo_loss_type": "several DPO loss types mixed is " + _RL_NOT_YET + "; use rl: dpo or rl: ipo",
    "dpo_loss_weights": "several DPO loss types mixed is " + _RL_NOT_YET + "; use rl: dpo or rl: ipo",
    "dpo_padding_free": "padding-free (packed) preference batches are " + _RL_NOT_YET,
    "dpo_use_liger_kernel": "Liger's fused DPO loss is " + _RL_NOT_YET,
    "precompute_ref_log_probs": "precomputed reference log-probabilities are " + _RL_NOT_YET
    + " (the reference runs with each batch; under LoRA it is the base, no second copy)",
    "kd_online_server": _KD_ONLINE,
    "kd_online_server_base_url": _KD_ONLINE,
    "kd_online_timeout": _KD_ONLINE,
    "kd_online_topk": _KD_ONLINE,
    "kd_temperature_min": "a minimum for an annealed KD temperature is not available in lathe-kd yet; set kd_temperature",
    "batch_size": "Axolotl derives it; set micro_batch_size and gradient_accumulation_steps",
    "rope_scaling": "set it under overrides_of_model_config (Axolotl also refuses it at top level)",
    "streaming": "set streaming: true on each entry of datasets",
})

# Dataset-entry keys (``datasets[i].key``) of Axolotl that no core prompt strategy reads.
DATASET_KEYS_IN_PLUGINS: dict[str, str] = {
    "logprobs_field": "kd", "temperature": "kd", "field_chosen": "rl", "field_rejected": "rl",
    "step_separator": "rl", "train_on_last_step_only": "rl", "max_completion_length": "rl",
}
DATASET_REFUSED: dict[str, str] = {
    "length": "synthetic datasets are not available yet",
    "max_input_id": "synthetic datasets are not available yet",
    "min_input_id": "synthetic datasets are not available yet",
    "seed": "synthetic datasets are not available yet",
    "sequence_length": "synthetic datasets are not available yet",
    "input_format": _NOT_YET,
    "input_transform": _NOT_YET,
    "preprocess_shards": _NOT_YET,
    "field_thinking": _NOT_YET,
    "split_thinking": _NOT_YET,
    "template_thinking_key": _NOT_YET,
    "message_field_training_detail": _NOT_YET,
    "trust_remote_code": "a dataset's remote code is never run by lathe; convert the data to json/parquet",
}
