"""The forward (noising) process: which tokens of a batch are replaced by the mask token.

Each sample (each packed segment of a row) draws its own time t and masks every
eligible token independently with probability

    p = min_mask_ratio + (max_mask_ratio - min_mask_ratio) * ((1 - eps) * s(t) + eps)

where t = k / num_diffusion_steps with k uniform in 1..num_diffusion_steps, and
s(t) = t (linear) or 1 - cos(pi * t / 2) (cosine). Eligible tokens are real
(attention_mask 1), not special tokens, and trained (labels != -100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class NoiseSchedule:
    schedule: str = "linear"
    min_ratio: float = 0.1
    max_ratio: float = 0.9
    num_steps: int = 128
    eps: float = 1e-3

    def shape(self, t: torch.Tensor) -> torch.Tensor:
        if self.schedule == "cosine":
            return 1 - torch.cos(t * (math.pi / 2))
        return t

    def mask_probability(self, t: torch.Tensor) -> torch.Tensor:
        """p(t) in [min_ratio, max_ratio] for times t in [0, 1]."""
        level = (1 - self.eps) * self.shape(t) + self.eps
        return self.min_ratio + (self.max_ratio - self.min_ratio) * level

    def sample_times(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        where = generator.device if generator is not None else device
        k = torch.randint(1, self.num_steps + 1, (n,), generator=generator, device=where)
        return k.to(device).float() / self.num_steps


def segment_ids(attention_mask: torch.Tensor, position_ids: torch.Tensor | None) -> torch.Tensor:
    """Number each packed sample of a row 1, 2, …; padding gets 0.

    A new sample starts wherever ``position_ids`` is 0 (lathe's packing restarts
    positions per sample). Without ``position_ids`` every row is one sample.
    """
    real = attention_mask.bool()
    if position_ids is None:
        return real.long()
    starts = (position_ids == 0) & real
    starts[:, 0] = real[:, 0]
    return torch.cumsum(starts.long(), dim=1) * real.long()


def eligible_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor | None,
    special_ids: list[int],
) -> torch.Tensor:
    """Tokens the forward process may mask: real, not special, trained."""
    ok = attention_mask.bool()
    if special_ids:
        ok &= ~torch.isin(input_ids, torch.tensor(special_ids, device=input_ids.device))
    if labels is not None:
        ok &= labels != IGNORE_INDEX
    return ok


@dataclass
class NoisedBatch:
    noisy_ids: torch.Tensor  # input_ids with masked positions replaced by the mask token
    masked: torch.Tensor  # bool, the positions replaced
    p_mask: torch.Tensor  # float, each token's masking probability (its sample's p)
    eligible: torch.Tensor  # bool, positions that could have been masked


def add_noise(
    input_ids: torch.Tensor,
    segments: torch.Tensor,
    eligible: torch.Tensor,
    mask_token_id: int,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> NoisedBatch:
    """Draw one t per sample (segment) and mask its eligible tokens with probability p(t)."""
    device = input_ids.device
    num_segments = int(segments.max().item()) + 1 if segments.numel() else 1
    rows = input_ids.shape[0]
    times = schedule.sample_times(rows * num_segments, device, generator)
    p_table = schedule.mask_probability(times).view(rows, num_segments)
    p_mask = torch.gather(p_table, 1, segments)
    where = generator.device if generator is not None else device
    draws = torch.rand(input_ids.shape, generator=generator, device=where).to(device)
    masked = (draws < p_mask) & eligible
    noisy = torch.where(masked, torch.full_like(input_ids, mask_token_id), input_ids)
    return NoisedBatch(noisy, masked, p_mask, eligible)
