"""Tiny causal LMs in the shapes of real families, built from a config with random weights.

Every architecture the examples name has a stand-in here (``examples/README.md``): the same
modeling code as the real model (attention, norms, MoE routing), a few thousand parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

Arch = Literal[
    "llama", "mistral", "qwen2", "qwen3", "gemma3", "phi3", "olmo2", "smollm3",
    "qwen2_moe", "qwen3_moe", "mixtral", "olmoe",
]
MOE_ARCHS: tuple[Arch, ...] = ("qwen2_moe", "qwen3_moe", "olmoe", "mixtral")  # fused experts (lathe.models.moe)

# transformers config class of each architecture, and what it needs besides the common shape.
_MOE = dict(num_experts=4, num_experts_per_tok=2, output_router_logits=False)
ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", {}),
    "mistral": ("MistralConfig", {"sliding_window": None}),
    "qwen2": ("Qwen2Config", {}),
    "qwen3": ("Qwen3Config", {"head_dim": 16}),
    "gemma3": ("Gemma3TextConfig", {"head_dim": 16, "sliding_window": 16, "query_pre_attn_scalar": 16}),
    "phi3": ("Phi3Config", {}),
    "olmo2": ("Olmo2Config", {}),
    "smollm3": ("SmolLM3Config", {}),
    "qwen2_moe": ("Qwen2MoeConfig", {**_MOE, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 64,
                                     "decoder_sparse_step": 1}),
    "qwen3_moe": ("Qwen3MoeConfig", {**_MOE, "head_dim": 16, "moe_intermediate_size": 32, "decoder_sparse_step": 1}),
    "mixtral": ("MixtralConfig", {"num_local_experts": 4, "num_experts_per_tok": 2, "output_router_logits": False,
                                  "sliding_window": None}),
    "olmoe": ("OlmoeConfig", {**_MOE, "intermediate_size": 32}),
}


def tiny_model_config(arch: Arch = "llama", vocab_size: int = 512, **overrides: Any):  # type: ignore[no-untyped-def]
    """A few-thousand-parameter config: 2 layers, hidden 64, 4 heads (2 KV heads)."""
    import transformers

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown tiny architecture {arch!r}; use one of {', '.join(ARCHITECTURES)}")
    cls_name, extra = ARCHITECTURES[arch]
    common: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    )
    common.update(extra)
    common.update(overrides)
    return getattr(transformers, cls_name)(**common)


def tiny_model(arch: Arch = "llama", tokenizer: Any = None, seed: int = 0, **overrides: Any):  # type: ignore[no-untyped-def]
    """A randomly initialised model (float32) whose vocabulary matches ``tokenizer``."""
    import torch
    from transformers import AutoModelForCausalLM

    vocab = len(tokenizer) if tokenizer is not None else 512
    cfg = tiny_model_config(arch, vocab_size=vocab, **overrides)
    if tokenizer is not None:
        cfg.pad_token_id = tokenizer.pad_token_id
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.bos_token_id = tokenizer.bos_token_id
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)


def write_tiny_model(path: str | Path, arch: Arch = "llama", seed: int = 0, **tokenizer_kwargs: Any) -> Path:
    """Save a tiny model and its tokenizer to ``path`` (safetensors); usable as ``base_model``."""
    from lathe.testing.tokenizer import tiny_tokenizer

    path = Path(path)
    tok = tiny_tokenizer(**tokenizer_kwargs)
    model = tiny_model(arch, tok, seed=seed)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path
