"""Tiny MoE blocks of every supported architecture, and an autograd reference of DenseMixer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ARCHS = ["qwen2_moe", "qwen3_moe", "olmoe", "mixtral"]


def tiny_block(arch: str, seed: int = 0, normalize: bool | None = None) -> torch.nn.Module:
    """One sparse MoE block (hidden 32, 6 experts, top-2) with random weights."""
    import transformers

    common = dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_experts_per_tok=2)
    if arch == "qwen2_moe":
        from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock as cls

        cfg = transformers.Qwen2MoeConfig(num_experts=6, moe_intermediate_size=16,
                                          shared_expert_intermediate_size=24, **common)
    elif arch == "qwen3_moe":
        from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock as cls

        cfg = transformers.Qwen3MoeConfig(num_experts=6, moe_intermediate_size=16, norm_topk_prob=True, **common)
    elif arch == "olmoe":
        from transformers.models.olmoe.modeling_olmoe import OlmoeSparseMoeBlock as cls

        cfg = transformers.OlmoeConfig(num_experts=6, intermediate_size=16, **common)
    else:
        from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock as cls

        cfg = transformers.MixtralConfig(num_local_experts=6, intermediate_size=16, **common)
    if normalize is not None:
        cfg.norm_topk_prob = normalize
    block = cls(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return block


def expert_output(block: torch.nn.Module, x: torch.Tensor, e: int) -> torch.Tensor:
    """E_e(x) for all tokens through the library's own experts module (weight 1, expert e only)."""
    index = torch.full((x.shape[0], 1), e, dtype=torch.long)
    return block.experts(x, index, torch.ones(x.shape[0], 1, dtype=x.dtype))


def straight_through_reference(block: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The block's output with top-k made the identity in the backward pass, written densely.

    q = top-k(p) in value, with ∂q/∂p = I; w = q / Σq when the router normalises; then
    y = Σ_e w_e E_e(x) (+ the shared expert of Qwen2-MoE).
    """
    x = hidden.reshape(-1, hidden.shape[-1])
    router = block.gate
    p = torch.softmax(F.linear(x, router.weight).float(), dim=-1)
    _, idx = torch.topk(p, router.top_k, dim=-1)
    q = p * torch.zeros_like(p).scatter_(1, idx, 1.0)
    q = p + (q - p).detach()
    w = q / q.sum(-1, keepdim=True) if getattr(router, "norm_topk_prob", True) else q
    y = sum(w[:, e : e + 1] * expert_output(block, x, e) for e in range(p.shape[-1]))
    if hasattr(block, "shared_expert"):
        y = y + torch.sigmoid(block.shared_expert_gate(x)) * block.shared_expert(x)
    return y.reshape(hidden.shape)
