"""The distillation loss, computed in chunks of positions so memory stays chunk × vocab.

For a position with teacher top-k ids K, teacher log-probabilities t (already at the
distillation temperature T, see :mod:`lathe_kd.teacher`) and student logits z:

- s = log_softmax(z / T) over the full vocabulary, read at K.
- ``kd_beta`` = 0, forward KL:  Σ_K p_t · (t − s)   (the student's mass outside K counts
  through its normalisation, as in top-k distillation generally).
- ``kd_beta`` = 1, reverse KL:  Σ_K p̂_s · (ŝ − t̂), where ŝ and t̂ are student and teacher
  renormalised over K (both distributions on the same support).
- 0 < β < 1, generalised JSD (Agarwal et al. 2024, GKD):  with M = β·p̂_t + (1 − β)·p̂_s,
  β·KL(p̂_t ‖ M) + (1 − β)·KL(p̂_s ‖ M); β = 0.5 is the Jensen–Shannon divergence.

    loss = kd_alpha · T² · Σ_pos KD / N  +  kd_ce_alpha · Σ_pos CE(z, label) / N

N is the number of trained tokens (labels ≠ −100) of the batch, or ``num_items`` when
the trainer counts them over a whole accumulated batch. CE uses the logits at T = 1.

Each chunk's logits are recomputed in the backward pass (activation checkpointing),
so neither pass holds more than one chunk's logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100


def topk_divergence(
    student_lp: torch.Tensor, teacher_lp: torch.Tensor, valid: torch.Tensor, beta: float
) -> torch.Tensor:
    """Per-position divergence on the teacher's top-k (module docstring). Inputs are n × k."""
    t = teacher_lp.masked_fill(~valid, 0.0)
    if beta == 0:
        p_t = t.exp() * valid
        return (p_t * (t - student_lp.masked_fill(~valid, 0.0))).sum(-1)
    s_hat = _renormalise(student_lp, valid)
    t_hat = _renormalise(teacher_lp, valid)
    p_s = s_hat.exp() * valid
    if beta == 1:
        return (p_s * (s_hat - t_hat)).sum(-1)
    p_t = t_hat.exp() * valid
    mix = torch.logaddexp(t_hat + torch.log(torch.tensor(beta)), s_hat + torch.log(torch.tensor(1 - beta)))
    kl_teacher = (p_t * (t_hat - mix)).sum(-1)
    kl_student = (p_s * (s_hat - mix)).sum(-1)
    return beta * kl_teacher + (1 - beta) * kl_student


def _renormalise(lp: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Log-probabilities renormalised over the valid entries; 0 (not −inf) elsewhere, so no NaN."""
    masked = lp.masked_fill(~valid, float("-inf"))
    norm = torch.logsumexp(masked, dim=-1, keepdim=True)
    return (lp - norm).masked_fill(~valid, 0.0)


@dataclass
class KDLoss:
    loss: torch.Tensor
    kd: torch.Tensor  # Σ KD / N, before kd_alpha and T²
    ce: torch.Tensor  # Σ CE / N


def _chunk_sums(
    hidden: torch.Tensor,
    lm_head: Callable[[torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    teacher_ids: torch.Tensor,
    teacher_lp: torch.Tensor,
    valid: torch.Tensor,
    temperature: float,
    beta: float,
) -> torch.Tensor:
    logits = lm_head(hidden).float()
    ce = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    student = torch.log_softmax(logits / temperature, dim=-1).gather(-1, teacher_ids)
    kd = topk_divergence(student, teacher_lp.float(), valid, beta).sum()
    return torch.stack([kd, ce])


def chunked_kd_loss(
    hidden: torch.Tensor,
    lm_head: Callable[[torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    teacher_ids: torch.Tensor,
    teacher_lp: torch.Tensor,
    *,
    temperature: float = 1.0,
    beta: float = 0.0,
    kd_alpha: float = 1.0,
    ce_alpha: float = 0.0,
    num_items: int | torch.Tensor | None = None,
    chunk_size: int = 1024,
) -> KDLoss:
    """Loss over n positions: ``hidden`` n × H, ``labels`` n, ``teacher_ids``/``teacher_lp`` n × k.

    A teacher entry is used where its logprob is finite; rows without one add no KD.
    """
    valid = torch.isfinite(teacher_lp)
    sums = hidden.new_zeros(2, dtype=torch.float32)
    for start in range(0, hidden.shape[0], chunk_size):
        part = slice(start, start + chunk_size)
        args = (hidden[part], lm_head, labels[part], teacher_ids[part], teacher_lp[part], valid[part], temperature, beta)
        if torch.is_grad_enabled() and hidden.requires_grad:
            sums = sums + checkpoint(_chunk_sums, *args, use_reentrant=False)
        else:
            sums = sums + _chunk_sums(*args)
    n = (labels != IGNORE_INDEX).sum() if num_items is None else torch.as_tensor(num_items)
    n = n.to(sums.device).clamp(min=1).float()
    kd, ce = sums[0] / n, sums[1] / n
    loss = kd_alpha * temperature**2 * kd + ce_alpha * ce
    return KDLoss(loss, kd, ce)
