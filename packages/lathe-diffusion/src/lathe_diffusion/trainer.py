"""The trainer for masked diffusion: noise each batch, predict the masked tokens bidirectionally.

lathe mixes its own behaviour (throughput, checkpoints, guards) in front of this class.
Loss normalisation over gradient accumulation: the Trainer collects the micro-batches
of one optimizer step before running them; we count their eligible tokens (the N of
:mod:`lathe_diffusion.loss`) there, so every micro-batch divides by the N of the whole
accumulated batch and the loss does not depend on how the batch is split.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from lathe.errors import LatheError
from lathe.metrics import StepMetrics
from lathe_diffusion.attention import bidirectional_logits
from lathe_diffusion.config import DiffusionSection
from lathe_diffusion.loss import diffusion_loss
from lathe_diffusion.noise import NoiseSchedule, add_noise, eligible_tokens, segment_ids
from lathe_diffusion.samples import SampleCallback


def mask_token_id(settings: DiffusionSection, tokenizer: Any) -> int:
    """The mask token's id: ``mask_token_id``, or the id of ``mask_token_str`` in the tokenizer."""
    if settings.mask_token_id is not None:
        if settings.mask_token_id >= len(tokenizer):
            raise LatheError(
                f"diffusion.mask_token_id {settings.mask_token_id} is outside the tokenizer's vocabulary ({len(tokenizer)} tokens)"
            )
        return settings.mask_token_id
    token = settings.mask_token
    ids = tokenizer.convert_tokens_to_ids([token])
    if not ids or ids[0] is None or ids[0] == tokenizer.unk_token_id:
        raise LatheError(f"diffusion.mask_token_str {token!r} is not in the tokenizer")
    return int(ids[0])


def schedule_of(settings: DiffusionSection) -> NoiseSchedule:
    return NoiseSchedule(
        settings.noise_schedule, settings.min_mask_ratio, settings.max_mask_ratio,
        settings.num_diffusion_steps, settings.eps,
    )


class DiffusionTrainer(Trainer):
    """Set ``diffusion`` (the config block) on a subclass; :func:`trainer_for` does that."""

    diffusion: DiffusionSection
    # each token is predicted at its own position (no shift): a packed sample's first token
    # is a target of its own segment, so lathe must not mask it at the boundary
    lathe_next_token_labels = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tokenizer = self.processing_class
        self.mask_id = mask_token_id(self.diffusion, tokenizer)
        self.special_ids = sorted({*tokenizer.all_special_ids, self.mask_id})
        self.schedule = schedule_of(self.diffusion)
        self.model_accepts_loss_kwargs = True  # we count N ourselves (get_batch_samples)
        self.loss_is_scaled_for_ga = True
        self._metrics = StepMetrics()
        self.last_batch: dict[str, torch.Tensor] | None = None
        self._eval_noise: torch.Generator | None = None
        if self.diffusion.generate_samples:
            self.add_callback(SampleCallback(self))

    def _eligible(self, inputs: dict[str, Any]) -> torch.Tensor:
        ids = inputs["input_ids"]
        attention = inputs.get("attention_mask")
        if attention is None or attention.dim() != 2:
            attention = torch.ones_like(ids)
        return eligible_tokens(ids, attention, inputs.get("labels"), self.special_ids)

    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: torch.device) -> tuple[list, Any]:
        batches, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        count = sum(int(self._eligible(b).sum()) for b in batches)
        n = torch.tensor(count, device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            n = self.accelerator.gather(n).sum()
        return batches, n

    def compute_loss(
        self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        ids = inputs["input_ids"]
        attention = inputs.get("attention_mask")
        if attention is None or attention.dim() != 2:
            attention = torch.ones_like(ids)
        positions = inputs.get("position_ids")
        segments = segment_ids(attention, positions)
        eligible = self._eligible(inputs)
        noise = None if model.training else self._eval_noise
        noised = add_noise(ids, segments, eligible, self.mask_id, self.schedule, generator=noise)
        logits = bidirectional_logits(model, noised.noisy_ids, segments, positions)
        out = diffusion_loss(
            logits, ids, noised.masked, noised.p_mask, eligible,
            self.diffusion.importance_weighting,
            num_eligible=num_items_in_batch if model.training else None,
        )
        split = "train" if model.training else "eval"
        for key, value in out.metrics.items():
            self._metrics.add(split, key, value)
        if model.training:
            self.last_batch = {"input_ids": ids.detach(), "segments": segments.detach(), "eligible": eligible.detach()}
        return (out.loss, {"loss": out.loss, "logits": logits}) if return_outputs else out.loss

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Every evaluation masks the eval set the same way (seeded), so eval losses compare."""
        self._eval_noise = torch.Generator().manual_seed(self.args.seed)
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self._eval_noise = None

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        self._metrics.flush_into(logs)
        super().log(logs, *args, **kwargs)


def trainer_for(settings: DiffusionSection) -> type[DiffusionTrainer]:
    """A DiffusionTrainer subclass bound to this run's ``diffusion:`` block."""
    return type("DiffusionTrainer", (DiffusionTrainer,), {"diffusion": settings})
