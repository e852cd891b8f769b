"""Per-token columns a strategy adds travel with the tokens through truncation and packing."""

from __future__ import annotations

import datasets

from lathe.data.packing import pack_dataset
from lathe.data.tokenize import apply_length_policy


def test_truncation_cuts_every_column() -> None:
    example = {"input_ids": [1, 2, 3, 4], "labels": [1, 2, 3, 4], "extra": [[1], [2], [], [4, 4]]}
    out, reason = apply_length_policy(example, 3, "truncate", "row 0")
    assert reason == "" and out == {"input_ids": [1, 2, 3], "labels": [1, 2, 3], "extra": [[1], [2], []]}


def test_packing_concatenates_every_column() -> None:
    ds = datasets.Dataset.from_dict({
        "input_ids": [[1, 2], [3], [4, 5, 6]],
        "labels": [[1, 2], [3], [4, 5, 6]],
        "extra": [[[0.1], []], [[0.3, 0.4]], [[], [0.5], [0.6]]],
    })
    packed = pack_dataset(ds, [[2, 1], [0]])
    assert packed["input_ids"] == [[4, 5, 6, 3], [1, 2]]
    assert packed["extra"] == [[[], [0.5], [0.6], [0.3, 0.4]], [[0.1], []]]
    assert packed["position_ids"] == [[0, 1, 2, 0], [0, 1]]


def test_tokenizing_keeps_a_strategys_extra_column() -> None:
    from types import SimpleNamespace

    from lathe.data.strategies import PromptStrategy
    from lathe.data.tokenize import tokenize_dataset

    class Tagged(PromptStrategy):
        def tokenize(self, row):  # type: ignore[no-untyped-def]
            ids = [ord(c) for c in row["text"]]
            return {"input_ids": ids, "labels": ids, "tag": [[i] for i in range(len(ids))]}

    cfg = SimpleNamespace(sequence_len=3, excess_length_strategy="truncate", min_sample_len=None)
    raw = datasets.Dataset.from_dict({"text": ["ab", "cdef"]})
    rows, _, _ = tokenize_dataset(raw, Tagged(cfg, None, {}), "datasets[0]", 1, "fp-tagged")  # type: ignore[arg-type]
    assert rows["tag"] == [[[0], [1]], [[0], [1], [2]]]
