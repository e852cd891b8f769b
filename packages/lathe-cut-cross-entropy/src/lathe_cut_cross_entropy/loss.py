"""The loss: ``linear_cross_entropy(hidden, lm_head.weight, labels, shift=True)``.

Every causal LM whose logits are ``softcap(scale · (h Wᵀ + b))`` is served (lathe's
:class:`~lathe.hidden_loss.OutputHead` finds W, b, scale and soft-cap for it, and lathe checks
that it reproduces the model's logits before training). The published kernel takes no
bias and no scale, so both are folded into its inputs: ``scale · (h Wᵀ + b) =
[scale·h, scale] · [W, b]ᵀ``. Tied embeddings need nothing: W is the shared weight.
"""

from __future__ import annotations

from typing import Any

import torch

from lathe.errors import LatheError
from lathe.hidden_loss import IGNORE_INDEX, HiddenStatesLoss, OutputHead, token_count


def kernel_inputs(hidden: torch.Tensor, head: OutputHead) -> tuple[torch.Tensor, torch.Tensor]:
    """(e, c) with ``e @ cᵀ`` equal to the head's logits before soft-capping."""
    e = hidden * head.scale if head.scale != 1.0 else hidden
    c = head.weight
    if head.bias is not None:
        ones = torch.full((*e.shape[:-1], 1), head.scale, dtype=e.dtype, device=e.device)
        e = torch.cat([e, ones], dim=-1)
        c = torch.cat([c, head.bias.unsqueeze(1).to(c.dtype)], dim=1)
    return e, c


def resolve_impl(impl: str) -> str:
    """``auto`` → the Triton kernel on CUDA, torch_compile elsewhere."""
    if impl == "auto":
        return "cce" if torch.cuda.is_available() else "torch_compile"
    return impl


class CutCrossEntropyLoss(HiddenStatesLoss):
    config_key = "cut_cross_entropy"

    def __init__(self, impl: str) -> None:
        self.impl = impl

    def check_model(self, model: Any) -> None:
        impl = resolve_impl(self.impl)
        if impl != "cce":
            print(f"lathe: cut_cross_entropy: using the {impl} implementation (no CUDA GPU here)", flush=True)
            return
        if not torch.cuda.is_available():
            raise LatheError(
                "cut_cross_entropy_impl: cce runs a Triton kernel that needs a CUDA GPU and none is available; "
                "set cut_cross_entropy_impl: torch_compile (or auto)"
            )
        dtype = next(p.dtype for p in model.parameters())
        if dtype not in (torch.bfloat16, torch.float16):
            raise LatheError(
                f"cut_cross_entropy: the cce kernel's backward pass needs bf16 or fp16 weights, not {dtype}; "
                "set bf16: true (or cut_cross_entropy_impl: torch_compile)"
            )

    def __call__(
        self, hidden: torch.Tensor, head: OutputHead, labels: torch.Tensor, num_items: Any, batch: dict[str, Any]
    ) -> torch.Tensor:
        from cut_cross_entropy import linear_cross_entropy

        e, c = kernel_inputs(hidden, head)
        total = linear_cross_entropy(
            e, c, labels.to(e.device), ignore_index=IGNORE_INDEX, softcap=head.softcap,
            reduction="sum", shift=True, impl=resolve_impl(self.impl),
        )
        return total.float() / token_count(labels, num_items)
