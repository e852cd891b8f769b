"""The collator when kd is enabled: lathe's own collator, plus the teacher columns padded.

The teacher columns are per token (like ``input_ids``), so they travel through packing
with the rows. Here each becomes a batch × length × k tensor, k the largest top-k in
the batch: ``teacher_ids`` padded with 0 and ``teacher_logprobs`` with −inf (−inf marks
"no teacher entry" for the loss). With ``kd_trainer: false`` they are dropped, so the
plain trainer never sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lathe_kd.strategy import TEACHER_IDS, TEACHER_LOGPROBS


def pad_teacher(
    ids: list[list[list[int]]], logprobs: list[list[list[float]]], length: int, left: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of per-token top-k lists → (batch × length × k ids, logprobs)."""
    k = max((len(top) for row in ids for top in row), default=1) or 1
    out_ids = torch.zeros(len(ids), length, k, dtype=torch.long)
    out_lp = torch.full((len(ids), length, k), float("-inf"), dtype=torch.float32)
    for b, (row_ids, row_lp) in enumerate(zip(ids, logprobs, strict=True)):
        offset = length - len(row_ids) if left else 0
        for j, (top, lp) in enumerate(zip(row_ids, row_lp, strict=True)):
            if top:
                out_ids[b, offset + j, : len(top)] = torch.tensor(top)
                out_lp[b, offset + j, : len(lp)] = torch.tensor(lp)
    return out_ids, out_lp


class KDCollator:
    def __init__(self, base: Callable[[list[dict[str, Any]]], dict[str, Any]], keep_teacher: bool, left: bool):
        self.base = base
        self.keep_teacher = keep_teacher
        self.left = left

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        own = (TEACHER_IDS, TEACHER_LOGPROBS)
        batch = self.base([{k: v for k, v in f.items() if k not in own} for f in features])
        if self.keep_teacher and all(TEACHER_IDS in f for f in features):
            length = batch["input_ids"].shape[1]
            ids, lp = pad_teacher([f[TEACHER_IDS] for f in features], [f[TEACHER_LOGPROBS] for f in features],
                                  length, self.left)
            batch[TEACHER_IDS], batch[TEACHER_LOGPROBS] = ids, lp
        return batch
