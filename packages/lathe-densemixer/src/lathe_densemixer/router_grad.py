"""The straight-through router gradient of DenseMixer (Yao et al., 2025).

A sparse MoE block computes, per token, routing probabilities ``p = softmax(router logits)``
over all E experts, keeps the top-k set S, and mixes

    y = Σ_{i∈S} w_i · E_i(x),   w_i = p_i / Z,   Z = Σ_{j∈S} p_j   (Z = 1 without normalisation).

Top-k has no useful derivative, so the usual backward gives ``∂L/∂p_j = 0`` for every
unselected expert. DenseMixer treats top-k as the identity in the backward pass
(straight-through). With ``g_i = ⟨∂L/∂y, E_i(x)⟩`` for *every* expert i (this is why all
experts run on all tokens), the chain rule through the normalisation gives

    ∂L/∂p_j = (g_j − Σ_{i∈S} w_i g_i) / Z     (normalised top-k: Qwen3-MoE, Mixtral)
    ∂L/∂p_j = g_j                              (plain top-k: Qwen2-MoE, OLMoE defaults)

for all j. For j ∈ S this is exactly the gradient the library's own graph already
produces, so nothing changes there. :class:`UnselectedRouterGrad` adds the rest: a term
whose forward value is exactly zero (the block's output is bitwise unchanged) and whose
backward puts the formula above on the unselected entries of ``p``. Expert weights get
their ordinary sparse gradient, since the estimator only concerns the routing weights.

The expert outputs ``E_i(x)`` are recomputed inside the backward, one expert at a time,
so the extra memory is one expert's activations, not tokens × experts × hidden.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def expert_outputs(experts: torch.nn.Module, x: torch.Tensor, expert: int) -> torch.Tensor:
    """``E_expert(x)`` for all tokens, from stacked ``gate_up_proj`` / ``down_proj`` weights."""
    gate, up = F.linear(x, experts.gate_up_proj[expert]).chunk(2, dim=-1)
    return F.linear(experts.act_fn(gate) * up, experts.down_proj[expert])


def unselected_prob_grad(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    probs: torch.Tensor,
    selected: torch.Tensor,
    experts: torch.nn.Module,
    normalize: bool,
) -> torch.Tensor:
    """``∂L/∂p`` for the experts not in each token's top-k (zero on the selected ones)."""
    num_experts = probs.shape[-1]
    with torch.no_grad():
        g = torch.empty(probs.shape, dtype=torch.float32, device=probs.device)
        for e in range(num_experts):
            g[:, e] = (grad_out.float() * expert_outputs(experts, x, e).float()).sum(-1)
        mask = torch.zeros_like(probs, dtype=torch.bool).scatter_(1, selected, True)
        if normalize:
            z = (probs * mask).sum(-1, keepdim=True).float()
            w = probs.float() * mask / z
            grad = (g - (w * g).sum(-1, keepdim=True)) / z
        else:
            grad = g
        return grad.masked_fill(mask, 0.0).to(probs.dtype)


class UnselectedRouterGrad(torch.autograd.Function):
    """Forward: zeros shaped like ``x``. Backward: the straight-through gradient of the
    routing probabilities of unselected experts (see the module docstring)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        probs: torch.Tensor,
        x: torch.Tensor,
        selected: torch.Tensor,
        experts: torch.nn.Module,
        normalize: bool,
    ) -> torch.Tensor:
        ctx.save_for_backward(probs.detach(), x, selected)
        ctx.experts = experts
        ctx.normalize = normalize
        return torch.zeros_like(x)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        probs, x, selected = ctx.saved_tensors
        grad = unselected_prob_grad(grad_out, x, probs, selected, ctx.experts, ctx.normalize)
        return grad, None, None, None, None


def dense_router_term(
    router_logits: torch.Tensor,
    selected: torch.Tensor,
    x: torch.Tensor,
    experts: torch.nn.Module,
    normalize: bool,
) -> torch.Tensor:
    """A zero tensor shaped like ``x`` (tokens × hidden) that carries the dense router gradient."""
    probs = torch.softmax(router_logits.float(), dim=-1)
    return UnselectedRouterGrad.apply(probs, x.detach(), selected, experts, normalize)
