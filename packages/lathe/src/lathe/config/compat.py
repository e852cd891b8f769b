"""Keys from configs written for Axolotl: renamed ones, and ones that have no effect here."""

from __future__ import annotations

import warnings
from typing import Any

# old name → current name. The old name still works, with a warning naming the new one.
RENAMED: dict[str, str] = {
    "model_revision": "revision_of_model",
    "eval_strategy_steps": "eval_steps",
    "lora_target_linear_modules": "lora_target_linear",
    "gradient_checkpointing_args": "gradient_checkpointing_kwargs",
}

# Axolotl keys that change nothing in lathe (hints to Axolotl itself, or derived values).
NO_EFFECT: frozenset[str] = frozenset(
    {
        "strict", "debug", "local_rank", "is_llama_derived_model", "is_mistral_derived_model",
        "is_qwen_derived_model", "is_falcon_derived_model", "sample_packing_eff_est",
        "total_num_tokens", "total_supervised_tokens", "eval_table_size", "eval_max_new_tokens",
        "wandb_watch", "save_safetensors", "flash_attn_cross_entropy", "flash_attn_rms_norm",
        "flash_attn_fuse_qkv", "flash_attn_fuse_mlp", "flash_optimum", "xformers_attention",
        "hub_strategy", "include_tokens_per_second", "resize_token_embeddings_to_32x",
        "mean_resizing_embeddings", "pretrain_multipack_attn", "multipack_real_batches",
        "sample_packing_bin_size", "sample_packing_group_size", "do_causal_lm_eval",
    }
)


class CompatWarning(UserWarning):
    """A config key from Axolotl that lathe renamed or ignores."""


def remap(raw: dict[str, Any]) -> dict[str, Any]:
    """Rename old keys and drop no-effect ones, warning about each."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in RENAMED:
            new = RENAMED[key]
            warnings.warn(f"config key {key!r} is now {new!r}; please rename it", CompatWarning, stacklevel=2)
            if new in raw:
                continue
            out[new] = value
        elif key in NO_EFFECT:
            if value not in (None, False):
                warnings.warn(f"config key {key!r} has no effect in lathe; it is ignored", CompatWarning, stacklevel=2)
        else:
            out[key] = value
    return out
