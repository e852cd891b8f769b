"""Tiny deterministic datasets in the shapes users feed lathe."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_WORDS = ["red", "green", "blue", "cat", "dog", "bird", "tree", "river", "stone", "cloud", "apple", "bread", "water", "light", "night", "small", "large", "quick", "slow", "warm", "cold", "seven", "three", "north", "south", "open", "close"]


def _phrase(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi)))


def alpaca_rows(n: int = 32, seed: int = 0) -> list[dict[str, str]]:
    """Rows with instruction / input / output, of varied lengths (some inputs empty)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = _phrase(rng, 2, 12)
        rows.append({
            "instruction": f"Repeat the words in reverse order ({i}).",
            "input": words if i % 3 else "",
            "output": " ".join(reversed(words.split())) if i % 3 else "nothing to reverse",
        })
    return rows


def chat_rows(n: int = 32, seed: int = 0, turns: int = 2) -> list[dict[str, Any]]:
    """Rows with ``messages``: an optional system turn, then user/assistant pairs."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        messages = [{"role": "system", "content": "You are terse."}] if i % 2 else []
        for _ in range(turns):
            question = _phrase(rng, 1, 8)
            messages.append({"role": "user", "content": f"Uppercase: {question}"})
            messages.append({"role": "assistant", "content": question.upper()})
        rows.append({"messages": messages})
    return rows


def text_rows(n: int = 32, seed: int = 0) -> list[dict[str, str]]:
    """Rows with ``text``, for completion and pretraining."""
    rng = random.Random(seed)
    return [{"text": _phrase(rng, 5, 40) + "."} for _ in range(n)]


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path
