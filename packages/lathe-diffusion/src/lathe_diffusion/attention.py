"""Bidirectional attention that keeps packed samples apart.

A diffusion LM sees the whole (partly masked) sequence, so attention is not causal.
With sample packing one row holds several samples; a token must attend only to
tokens of its own sample. We build the 4D additive mask transformers accepts as-is
(shape batch × 1 × query × key; 0 where attention is allowed, the dtype's minimum
elsewhere), which works with the ``eager`` and ``sdpa`` attention backends.
"""

from __future__ import annotations

import torch


def block_attention_mask(segments: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive 4D mask from segment ids (0 = padding, 1.. = packed samples).

    Tokens attend to every token of their own segment. A padding token attends only
    to itself, so no softmax row is empty (which would give NaN).
    """
    same = segments[:, :, None] == segments[:, None, :]
    real = segments[:, None, :] > 0
    allowed = same & real
    eye = torch.eye(segments.shape[1], dtype=torch.bool, device=segments.device)
    allowed |= eye[None] & (segments[:, :, None] == 0)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def bidirectional_logits(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    segments: torch.Tensor,
    position_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run ``model`` with the block mask (no causal mask) and return its logits."""
    dtype = next(model.parameters()).dtype
    if not dtype.is_floating_point:
        dtype = torch.float32
    mask = block_attention_mask(segments, dtype)
    if position_ids is None:
        position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False)
    return out.logits
