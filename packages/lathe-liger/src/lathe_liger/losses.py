"""Liger's losses on lathe's ``lathe_hidden_states_loss`` hook.

``liger_fused_linear_cross_entropy``: ``LigerFusedLinearCrossEntropyLoss(weight, hidden,
targets, bias)`` computes the loss chunk by chunk from the hidden states (Triton).
``liger_cross_entropy``: the logits are built by the output head and Liger's cross-entropy
kernel takes them. Both sum the token losses and divide by lathe's trained-token count of
the accumulated batch; logit scale and soft-cap come from :class:`~lathe.hidden_loss.OutputHead`
(the scale is folded into the hidden states and the bias, soft-cap is liger's own argument).
"""

from __future__ import annotations

from typing import Any

import torch

from lathe.errors import LatheError
from lathe.hidden_loss import (
    IGNORE_INDEX,
    HiddenStatesLoss,
    OutputHead,
    next_token_targets,
    token_count,
)


def _needs_cuda(key: str) -> None:
    if not torch.cuda.is_available():
        raise LatheError(f"{key}: Liger's kernels are Triton kernels and need a CUDA GPU; none is available")


class LigerFusedLinearCE(HiddenStatesLoss):
    config_key = "liger_fused_linear_cross_entropy"

    def __init__(self, use_token_scaling: bool) -> None:
        self.use_token_scaling = use_token_scaling

    def check_model(self, model: Any) -> None:
        _needs_cuda(self.config_key)

    def __call__(
        self, hidden: torch.Tensor, head: OutputHead, labels: torch.Tensor, num_items: Any, batch: dict[str, Any]
    ) -> torch.Tensor:
        from liger_kernel.transformers.fused_linear_cross_entropy import (
            LigerFusedLinearCrossEntropyLoss,
        )

        loss_fn = LigerFusedLinearCrossEntropyLoss(
            ignore_index=IGNORE_INDEX, reduction="sum", softcap=head.softcap, use_token_scaling=self.use_token_scaling
        )
        x = hidden * head.scale if head.scale != 1.0 else hidden
        bias = head.bias * head.scale if head.bias is not None and head.scale != 1.0 else head.bias
        targets = next_token_targets(labels)
        total = loss_fn(head.weight, x.flatten(0, -2), targets.flatten(), bias)
        return total.float() / token_count(labels, num_items)


class LigerCE(HiddenStatesLoss):
    config_key = "liger_cross_entropy"

    def check_model(self, model: Any) -> None:
        _needs_cuda(self.config_key)

    def __call__(
        self, hidden: torch.Tensor, head: OutputHead, labels: torch.Tensor, num_items: Any, batch: dict[str, Any]
    ) -> torch.Tensor:
        from liger_kernel.transformers.cross_entropy import LigerCrossEntropyLoss

        logits = head(hidden)
        targets = next_token_targets(labels)
        total = LigerCrossEntropyLoss(ignore_index=IGNORE_INDEX, reduction="sum")(
            logits.flatten(0, -2), targets.flatten()
        )
        return total.float() / token_count(labels, num_items)
