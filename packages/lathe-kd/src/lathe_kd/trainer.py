"""The distillation trainer: one forward pass for hidden states, then the chunked KD loss.

The model runs with ``logits_to_keep=1`` and ``output_hidden_states=True``, so the full
batch × length × vocab logits are never built; :func:`lathe_kd.loss.chunked_kd_loss`
applies the output layer chunk by chunk. lathe mixes its own behaviour in front of this
class. Loss normalisation follows the core trainer: the Trainer counts the trained tokens
of the whole accumulated batch and passes them as ``num_items_in_batch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import Trainer

from lathe.metrics import StepMetrics
from lathe_kd.align import align
from lathe_kd.loss import chunked_kd_loss
from lathe_kd.strategy import TEACHER_IDS, TEACHER_LOGPROBS

CHUNK_SIZE = 1024


def output_layer(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """hidden → logits as the model computes them (its output embeddings, then any soft-capping)."""
    head = model.get_output_embeddings()  # type: ignore[operator]
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    if not cap:
        return head  # type: ignore[no-any-return]
    return lambda h: torch.tanh(head(h) / cap) * cap


class KDTrainer(Trainer):
    """Set ``kd`` (the run's config) on a subclass; :func:`trainer_for` does that."""

    kd: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = True  # the Trainer then counts trained tokens for us
        self.loss_is_scaled_for_ga = True
        self._metrics = StepMetrics()

    def compute_loss(
        self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", TEACHER_IDS, TEACHER_LOGPROBS)}
        model_inputs.update(output_hidden_states=True, logits_to_keep=1, use_cache=False)
        out = model(**model_inputs)
        hidden = out.hidden_states[-1]
        labels = inputs["labels"]
        teacher_ids = inputs.get(TEACHER_IDS)
        teacher_lp = inputs.get(TEACHER_LOGPROBS)
        if teacher_ids is None:  # a batch without teacher data: cross-entropy only
            teacher_ids = torch.zeros(*labels.shape, 1, dtype=torch.long, device=labels.device)
            teacher_lp = torch.full((*labels.shape, 1), float("-inf"), device=labels.device)
        a = align(labels, teacher_ids, teacher_lp)
        loss = chunked_kd_loss(
            hidden[:, :-1][a.positions], output_layer(self.accelerator.unwrap_model(model)),
            a.labels, a.teacher_ids, a.teacher_lp,
            temperature=self.kd.kd_temperature, beta=self.kd.kd_beta,
            kd_alpha=self.kd.kd_alpha, ce_alpha=self.kd.kd_ce_alpha,
            num_items=num_items_in_batch if model.training else None, chunk_size=CHUNK_SIZE,
        )
        split = "train" if model.training else "eval"
        self._metrics.add(split, "kd_loss", float(loss.kd.detach()))
        self._metrics.add(split, "ce_loss", float(loss.ce.detach()))
        return (loss.loss, {"loss": loss.loss}) if return_outputs else loss.loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        self._metrics.flush_into(logs)
        super().log(logs, *args, **kwargs)


def trainer_for(cfg: Any) -> type[KDTrainer]:
    """A KDTrainer subclass bound to this run's config."""
    return type("KDTrainer", (KDTrainer,), {"kd": cfg})
