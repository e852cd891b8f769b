"""Toy preference data: the chosen completion repeats the prompt's words, the rejected one does not."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from lathe.testing import base_config, write_jsonl

WORDS = ["red", "green", "blue", "cat", "dog", "bird", "tree", "river", "stone", "cloud", "apple", "bread"]
PAIRS_FILE = Path(__file__).parent / "data" / "pairs.jsonl"


def pair_rows(n: int = 32, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = rng.sample(WORDS, 2)
        other = rng.sample([w for w in WORDS if w not in words], 2)
        rows.append({"question": f"Repeat: {' '.join(words)}", "chosen": " ".join(words), "rejected": " ".join(other)})
    return rows


def kto_rows(n: int = 32, seed: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i, pair in enumerate(pair_rows(n, seed)):
        good = i % 2 == 0
        rows.append({"question": pair["question"], "completion": pair["chosen" if good else "rejected"], "label": good})
    return rows


def rl_config(tmp_path: Path, rl: str, rows: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    """A tiny-model config for ``rl`` on the toy rows (chatml.intel), 10 steps of batch 4."""
    data = tmp_path / "data" / "prefs.jsonl"
    write_jsonl(rows if rows is not None else (kto_rows() if rl == "kto" else pair_rows()), data)
    cfg = base_config(tmp_path, rl=rl, datasets=[{"path": str(data), "type": "chatml.intel"}], max_steps=10,
                      learning_rate=1e-2, sequence_len=64)
    cfg.update(overrides)
    return cfg
