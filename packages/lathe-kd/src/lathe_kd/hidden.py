"""The distillation loss on lathe's ``lathe_hidden_states_loss`` hook.

lathe's trainer runs the model with ``logits_to_keep=1`` and ``output_hidden_states=True``,
so the full batch × length × vocab logits are never built, and calls :class:`KDHiddenLoss`
with the final hidden states and the model's output head (its weight, logit scale and
soft-cap, :class:`lathe.hidden_loss.OutputHead`); :func:`lathe_kd.loss.chunked_kd_loss`
applies that head chunk by chunk. Normalisation is the core's: ``num_items`` is the trained
tokens of the whole accumulated batch.
"""

from __future__ import annotations

from typing import Any

import torch

from lathe.hidden_loss import HiddenStatesLoss, OutputHead
from lathe_kd.align import align
from lathe_kd.loss import chunked_kd_loss
from lathe_kd.strategy import TEACHER_IDS, TEACHER_LOGPROBS

CHUNK_SIZE = 1024


class KDHiddenLoss(HiddenStatesLoss):
    """``kd_alpha · T² · KD + kd_ce_alpha · CE`` from the hidden states (see :mod:`lathe_kd.loss`)."""

    config_key = "kd_trainer"
    batch_keys = (TEACHER_IDS, TEACHER_LOGPROBS)

    def __init__(self, cfg: Any) -> None:
        self.kd = cfg

    def __call__(
        self, hidden: torch.Tensor, head: OutputHead, labels: torch.Tensor, num_items: Any, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        teacher_ids = batch.get(TEACHER_IDS)
        teacher_lp = batch.get(TEACHER_LOGPROBS)
        if teacher_ids is None:  # a batch without teacher data: cross-entropy only
            teacher_ids = torch.zeros(*labels.shape, 1, dtype=torch.long, device=labels.device)
            teacher_lp = torch.full((*labels.shape, 1), float("-inf"), device=labels.device)
        a = align(labels, teacher_ids, teacher_lp)
        loss = chunked_kd_loss(
            hidden[:, :-1][a.positions], head, a.labels, a.teacher_ids, a.teacher_lp,
            temperature=self.kd.kd_temperature, beta=self.kd.kd_beta,
            kd_alpha=self.kd.kd_alpha, ce_alpha=self.kd.kd_ce_alpha,
            num_items=num_items, chunk_size=CHUNK_SIZE,
        )
        return loss.loss, {"kd_loss": float(loss.kd.detach()), "ce_loss": float(loss.ce.detach())}
