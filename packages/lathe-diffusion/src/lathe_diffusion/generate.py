"""Generation by iterative unmasking (LLaDA's sampler with low-confidence remasking).

Start from a sequence whose unknown tokens are all the mask token. At each of
``steps`` steps the model predicts every masked position at once; each prediction
is the argmax (temperature 0) or a sample from softmax(logits / temperature), and
its confidence is the probability the model gives it. The most confident
predictions are kept and the rest stay masked. A row with M masked tokens keeps
M // steps of them per step, plus one more in the first M % steps steps, so every
token is unmasked after ``steps`` steps (earlier when steps > M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lathe_diffusion.attention import bidirectional_logits


@dataclass
class Unmasked:
    ids: torch.Tensor
    forward_passes: int


def transfer_counts(num_masked: torch.Tensor, steps: int) -> torch.Tensor:
    """How many tokens each row unmasks at each step: shape rows × steps, rows sum to num_masked."""
    base = num_masked // steps
    extra = num_masked % steps
    step = torch.arange(steps, device=num_masked.device)
    return base[:, None] + (step[None, :] < extra[:, None]).long()


def _choose(logits: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    flat = probs.view(-1, probs.shape[-1])
    if generator is not None and generator.device != flat.device:
        drawn = torch.multinomial(flat.cpu(), 1, generator=generator).to(flat.device)
    else:
        drawn = torch.multinomial(flat, 1, generator=generator)
    return drawn.view(probs.shape[:-1])


@torch.no_grad()
def unmask(
    model: torch.nn.Module,
    ids: torch.Tensor,
    mask_token_id: int,
    steps: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> Unmasked:
    """Fill every ``mask_token_id`` position of ``ids`` (rows × length, no padding)."""
    ids = ids.clone()
    masked = ids == mask_token_id
    plan = transfer_counts(masked.sum(1), steps)
    segments = torch.ones_like(ids)
    passes = 0
    for step in range(steps):
        if not masked.any():
            break
        logits = bidirectional_logits(model, ids, segments).float()
        logits[..., mask_token_id] = float("-inf")  # a prediction is never the mask itself
        passes += 1
        chosen = _choose(logits, temperature, generator)
        confidence = torch.softmax(logits, dim=-1).gather(-1, chosen[..., None])[..., 0]
        confidence = confidence.masked_fill(~masked, -1.0)
        rank = confidence.argsort(dim=1, descending=True).argsort(dim=1)
        keep = masked & (rank < plan[:, step : step + 1])
        ids = torch.where(keep, chosen, ids)
        masked &= ~keep
    return Unmasked(ids, passes)
