"""Reading label masks back as text, for assertions."""

from __future__ import annotations

from typing import Any


def trained_runs(example: dict[str, list[int]], tok: Any) -> list[str]:
    """Decoded text of each maximal run of trained tokens, in order."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(example["input_ids"], example["labels"], strict=True):
        trained = label != -100
        if trained:
            assert label == token, "a trained label must equal its input token"
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = trained
    return [tok.decode(r) for r in runs]
