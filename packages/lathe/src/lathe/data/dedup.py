"""``dataset_exact_deduplication``: drop tokenized rows identical to an earlier one (Axolotl's
meaning: exact duplicates after tokenization, within each split, before the eval split)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

REASON = "exact duplicate (dataset_exact_deduplication)"


def drop_exact_duplicates(rows: datasets.Dataset) -> tuple[datasets.Dataset, int]:
    """The rows without repeats (first occurrence kept, order unchanged), and how many were dropped."""
    seen: set[str] = set()
    keep = []
    for index, row in enumerate(rows):
        digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            keep.append(index)
    if len(keep) == len(rows):
        return rows, 0
    return rows.select(keep).flatten_indices(), len(rows) - len(keep)
