"""Batches of preference rows, as one padded batch the model runs once.

Paired rows: the B chosen sequences, then the B rejected ones (``input_ids`` of 2B rows), so
the core's token counting and the model see an ordinary causal-LM batch. KTO rows: the B
rows, then B mismatched rows (prompt i with the completion of row i-1) for the KL estimate,
and ``kto_label`` (B). Right padding; padded labels are -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lathe.data.strategies import IGNORE
from lathe.errors import LatheError
from lathe_rl.strategies import (
    COMPLETION_START,
    KTO_LABEL,
    REJECTED_IDS,
    REJECTED_LABELS,
    REWARD_COLUMNS,
)


def _mismatched(rows: Sequence[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
    """Prompt of row i with the completion of row i-1 (KTO's KL estimate pairs)."""
    out = []
    for i, row in enumerate(rows):
        other = rows[i - 1]
        p, q = row[COMPLETION_START][0], other[COMPLETION_START][0]
        completion = list(other["input_ids"][q:])
        out.append(([*row["input_ids"][:p], *completion], [IGNORE] * p + completion))
    return out


@dataclass
class PreferenceCollator:
    pad_id: int
    sequence_len: int

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        first = rows[0]
        if REWARD_COLUMNS in first:
            return self._prompts(rows)
        seqs = [(list(r["input_ids"]), list(r["labels"])) for r in rows]
        extra: dict[str, Any] = {}
        if REJECTED_IDS in first:
            seqs += [(list(r[REJECTED_IDS]), list(r[REJECTED_LABELS])) for r in rows]
        elif KTO_LABEL in first:
            seqs += _mismatched(rows)
            extra[KTO_LABEL] = torch.tensor([r[KTO_LABEL][0] for r in rows], dtype=torch.bool)
        else:
            raise LatheError("rl: a batch row has neither rejected_input_ids nor kto_label; every dataset of an "
                             "rl: run needs a preference type (chatml.intel, chat_template.default, …)")
        seqs = [(ids[: self.sequence_len], labels[: self.sequence_len]) for ids, labels in seqs]
        width = max(len(ids) for ids, _ in seqs)
        input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (ids, lab) in enumerate(seqs):
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            labels[i, : len(lab)] = torch.tensor(lab, dtype=torch.long)
            mask[i, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, **extra}

    def _prompts(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """GRPO prompts, left-padded (generation appends to the right end)."""
        import torch

        seqs = [list(r["input_ids"])[-self.sequence_len:] for r in rows]
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, ids in enumerate(seqs):
            input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[i, width - len(ids):] = 1
        return {"input_ids": input_ids, "attention_mask": mask, REWARD_COLUMNS: [r[REWARD_COLUMNS][0] for r in rows]}
