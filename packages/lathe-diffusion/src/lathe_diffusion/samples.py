"""Samples written to the log while training: original, masked and generated text.

Every ``generation_interval`` optimizer steps (when ``generate_samples``), the first
sample of up to ``num_generation_samples`` rows of the latest batch is cut to
``generation_max_length`` tokens, a share of its eligible tokens drawn from the noise
schedule is masked, and the model fills them in over ``generation_steps`` steps at
``generation_temperature``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch
from transformers import TrainerCallback

from lathe_diffusion.generate import unmask


@dataclass
class Sample:
    step: int
    original: str
    masked: str
    generated: str
    num_masked: int
    num_correct: int


def mask_sample(
    ids: torch.Tensor, eligible: torch.Tensor, ratio: float, mask_id: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mask round(ratio × eligible) of the eligible tokens (at least one) of a 1-D sequence."""
    where = eligible.nonzero().flatten()
    count = max(1, round(ratio * len(where))) if len(where) else 0
    pick = where[torch.randperm(len(where), generator=generator)[:count].to(where.device)]
    out = ids.clone()
    out[pick] = mask_id
    return out


class SampleCallback(TrainerCallback):
    """Holds its trainer (for the latest batch, the model and the tokenizer); keeps the samples."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.samples: list[Sample] = []

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        settings = self.trainer.diffusion
        due = state.global_step % settings.generation_interval == 0
        if due and state.is_world_process_zero and self.trainer.last_batch is not None:
            self.write_samples(state.global_step)

    @torch.no_grad()
    def write_samples(self, step: int) -> list[Sample]:
        trainer, settings = self.trainer, self.trainer.diffusion
        batch = trainer.last_batch
        model, tokenizer = trainer.model, trainer.processing_class
        was_training = model.training
        model.eval()
        made = []
        try:
            for row in range(min(settings.num_generation_samples, batch["input_ids"].shape[0])):
                first = batch["segments"][row] == 1
                ids = batch["input_ids"][row][first][: settings.generation_max_length]
                eligible = batch["eligible"][row][first][: settings.generation_max_length]
                if not eligible.any():
                    continue
                t = trainer.schedule.sample_times(1, ids.device)
                ratio = float(trainer.schedule.mask_probability(t))
                noisy = mask_sample(ids, eligible, ratio, trainer.mask_id)
                filled = unmask(model, noisy[None], trainer.mask_id, settings.generation_steps,
                                settings.generation_temperature).ids[0]
                was_masked = noisy == trainer.mask_id
                made.append(Sample(
                    step=step,
                    original=tokenizer.decode(ids),
                    masked=tokenizer.decode(noisy),
                    generated=tokenizer.decode(filled),
                    num_masked=int(was_masked.sum()),
                    num_correct=int((filled[was_masked] == ids[was_masked]).sum()),
                ))
        finally:
            model.train(was_training)
        for s in made:
            print(f"lathe: diffusion sample at step {s.step} ({s.num_correct}/{s.num_masked} masked tokens restored)\n"
                  f"  original:  {s.original!r}\n  masked:    {s.masked!r}\n  generated: {s.generated!r}",
                  file=sys.stderr)
        self.samples.extend(made)
        return made
