"""Tokenizing a few rows as ``lathe preprocess`` would, without files or a cache."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def prepared_rows(raw: dict[str, Any], tokenizer: Any, rows: list[dict[str, Any]]) -> list[dict[str, list[int]]]:
    """``input_ids`` and ``labels`` of ``rows`` under a config dict with one dataset entry.

    ``raw`` holds config keys (``datasets`` with one entry, or ``pretraining_dataset``; its
    ``path`` is not read); the rows go through the entry's prompt strategy and the length
    policy, and the kept rows come back in order (unpacked).
    """
    import datasets

    from lathe.config import validate
    from lathe.data.strategies import build_strategy, core_strategies
    from lathe.data.tokenize import tokenize_dataset
    from lathe.plugins import Plugins

    cfg = validate({"base_model": "unused", "dataset_processes": 1, **raw}, Plugins())
    if cfg.pretraining_dataset:
        entry, where = cfg.pretraining_dataset[0].as_dataset(), "pretraining_dataset[0]"
    else:
        entry, where = cfg.datasets[0], "datasets[0]"
    strategy = build_strategy(entry, where, cfg, tokenizer, core_strategies())
    fingerprint = hashlib.sha256(json.dumps([raw, rows], sort_keys=True, default=str).encode()).hexdigest()[:16]
    tokenized, _, _ = tokenize_dataset(datasets.Dataset.from_list(rows), strategy, where, 1, fingerprint)
    return [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in tokenized]
