"""The preference losses, per example, from sequence log-probabilities (formulas of the papers,
with TRL's conventions for which log-probabilities are length-averaged).

Notation: ``pc``/``pr`` are the policy's summed log-probabilities of the chosen/rejected
completion tokens, ``rc``/``rr`` the reference model's; ``avg_*`` are per-token means.

- DPO (Rafailov et al. 2023), with cDPO label smoothing ε:
  ``h = (pc - pr) - (rc - rr)``; ``loss = -(1-ε) log σ(βh) - ε log σ(-βh)``.
- IPO (Azar et al. 2023), on length-averaged log-probabilities: ``(h - 1/(2β))²``.
- KTO (Ethayarajh et al. 2024): ``z = max(0, mean KL estimate)`` (detached);
  desirable ``w_d (1 - σ(β(log π/π_ref - z)))``, undesirable ``w_u (1 - σ(β(z - log π/π_ref)))``.
- ORPO (Hong et al. 2024), on averaged log-probabilities:
  ``NLL(chosen) - λ log σ(log odds_c - log odds_r)``, ``log odds = a - log(1 - e^a)``.
- CPO (Xu et al. 2024): ``-log σ(β(pc - pr)) + α NLL(chosen)`` (label smoothing as DPO).
- SimPO (Meng et al. 2024), on averaged log-probabilities:
  ``-log σ(β(avg_c - avg_r) - γ) + α NLL(chosen)`` with ``γ = simpo_gamma`` (TRL's reading).
- Bradley–Terry reward model: ``-log σ(r_c - r_r)`` on the scores (see :mod:`lathe_rl.reward`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sigmoid_loss(logits: torch.Tensor, beta: float, smoothing: float = 0.0) -> torch.Tensor:
    """``-(1-ε) log σ(β x) - ε log σ(-β x)``, the loss of DPO, CPO and SimPO."""
    return -(1 - smoothing) * F.logsigmoid(beta * logits) - smoothing * F.logsigmoid(-beta * logits)


def dpo_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor, beta: float,
             smoothing: float = 0.0) -> torch.Tensor:
    return sigmoid_loss((pc - pr) - (rc - rr), beta, smoothing)


def ipo_loss(avg_pc: torch.Tensor, avg_pr: torch.Tensor, avg_rc: torch.Tensor, avg_rr: torch.Tensor,
             beta: float) -> torch.Tensor:
    return ((avg_pc - avg_pr) - (avg_rc - avg_rr) - 1 / (2 * beta)) ** 2


def kto_loss(policy: torch.Tensor, reference: torch.Tensor, desirable: torch.Tensor, kl: torch.Tensor,
             beta: float, desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> torch.Tensor:
    """Per-row KTO losses; ``desirable`` is a bool tensor, ``kl`` the detached, clamped estimate."""
    ratio = policy - reference
    good = desirable_weight * (1 - torch.sigmoid(beta * (ratio - kl)))
    bad = undesirable_weight * (1 - torch.sigmoid(beta * (kl - ratio)))
    return torch.where(desirable, good, bad)


def kl_estimate(policy_kl: torch.Tensor, reference_kl: torch.Tensor) -> torch.Tensor:
    """KTO's reference point: the mean log-ratio on mismatched (prompt, completion) pairs, at least 0."""
    return (policy_kl - reference_kl).mean().clamp(min=0).detach()


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """``log(1 - e^a)`` for ``a < 0``."""
    return torch.log1p(-torch.exp(a))


def orpo_loss(avg_pc: torch.Tensor, avg_pr: torch.Tensor, nll: torch.Tensor, lam: float) -> torch.Tensor:
    log_odds = (avg_pc - avg_pr) - (_log1mexp(avg_pc) - _log1mexp(avg_pr))
    return nll - lam * F.logsigmoid(log_odds)


def cpo_loss(pc: torch.Tensor, pr: torch.Tensor, nll: torch.Tensor, beta: float, alpha: float,
             smoothing: float = 0.0) -> torch.Tensor:
    return sigmoid_loss(pc - pr, beta, smoothing) + alpha * nll


def simpo_loss(avg_pc: torch.Tensor, avg_pr: torch.Tensor, nll: torch.Tensor, beta: float, gamma: float,
               alpha: float) -> torch.Tensor:
    return sigmoid_loss(avg_pc - avg_pr - gamma / beta, beta) + alpha * nll


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, center: float = 0.0) -> torch.Tensor:
    """Per pair ``-log σ(r_c - r_r) + center (r_c + r_r)²`` (a reward model's scores)."""
    return -F.logsigmoid(chosen - rejected) + center * (chosen + rejected) ** 2
