"""The masked-diffusion loss (LLaDA, Nie et al. 2025, eq. 3) and its metrics.

    loss = Σ_{masked i} w_i · CE(logits_i, x_i)  /  N

with w_i = 1/p_i under importance weighting (the ELBO weight; 1 otherwise) and N the
number of eligible tokens in the batch (the tokens that could have been masked: real,
non-special, trained). For pretraining rows without padding N = batch × length, which
is LLaDA's pretraining normaliser; for SFT N counts the response tokens, LLaDA's
answer-length normaliser summed over the batch. Logits are not shifted: position i
predicts its own (masked) token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class DiffusionLoss:
    loss: torch.Tensor  # what is back-propagated
    metrics: dict[str, float]


def diffusion_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    p_mask: torch.Tensor,
    eligible: torch.Tensor,
    importance_weighting: bool = True,
    num_eligible: int | torch.Tensor | None = None,
) -> DiffusionLoss:
    """Loss over the masked positions of ``targets`` (the clean ids).

    ``num_eligible`` overrides N (e.g. counted over a whole accumulated batch).
    """
    n = eligible.sum() if num_eligible is None else torch.as_tensor(num_eligible, device=logits.device)
    n = n.clamp(min=1).to(torch.float32)
    picked = logits[masked].float()
    gold = targets[masked]
    ce = F.cross_entropy(picked, gold, reduction="none")
    weights = 1.0 / p_mask[masked].float() if importance_weighting else torch.ones_like(ce)
    loss = (ce * weights).sum() / n
    num_masked = int(masked.sum().item())
    with torch.no_grad():
        count = max(num_masked, 1)
        metrics = {
            "ce_loss": float(ce.sum().item() / count),
            "accuracy": float((picked.argmax(-1) == gold).float().sum().item() / count),
            "mask_ratio": num_masked / max(int(eligible.sum().item()), 1),
            "num_masked_tokens": float(num_masked),
            "avg_p_mask": float(p_mask[eligible].float().mean().item()) if eligible.any() else 0.0,
            "importance_weight_avg": float(weights.mean().item()) if num_masked else 0.0,
        }
    return DiffusionLoss(loss, metrics)
