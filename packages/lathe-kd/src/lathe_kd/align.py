"""Which teacher row scores which student position.

Rows carry teacher data per token, aligned with ``input_ids``: row j holds the
teacher's top-k distribution over token j given the tokens before it (the
``prompt_logprobs`` convention of vLLM and SGLang). The student predicts token j
from position j − 1, so — exactly like ``labels`` — student position i is scored
against teacher row i + 1. A token is distilled when it is trained
(``labels`` ≠ −100) and has a teacher row. The first token of a packed sample is never
predicted from the sample before it: lathe's collator masks its label (the core's
``BoundaryMasking``, applied to kd's collator like any other).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


@dataclass
class Aligned:
    positions: torch.Tensor  # bool, batch × (length − 1): student positions that are scored
    labels: torch.Tensor  # n: the next token at each scored position
    teacher_ids: torch.Tensor  # n × k
    teacher_lp: torch.Tensor  # n × k, −inf where there is no teacher entry


def align(
    labels: torch.Tensor,
    teacher_ids: torch.Tensor,
    teacher_lp: torch.Tensor,
) -> Aligned:
    """Shift the per-token targets by one and keep the trained positions."""
    next_labels = labels[:, 1:]
    keep = next_labels != IGNORE_INDEX
    lp = teacher_lp[:, 1:][keep]
    return Aligned(keep, next_labels[keep], teacher_ids[:, 1:][keep], lp)
