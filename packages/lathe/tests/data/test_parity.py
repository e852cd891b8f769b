"""The parity matrix: every strategy x option gives Axolotl 0.19.0's rows, token for token.

``parity/axolotl_rows.json`` holds, per case, the tokenizer variant, config keys, dataset entry
and input rows, and the rows Axolotl's own code path made from them (written by
``bench/parity_axolotl.py --write-golden``; each row's ``text`` shows trained tokens in
``[[...]]`` for checking by eye). A case with ``restore`` is a deliberate difference: lathe
gives Axolotl's rows only with those keys, and other rows without them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from lathe.testing import prepared_rows, tiny_tokenizer

CASES = json.loads((Path(__file__).parent / "parity" / "axolotl_rows.json").read_text())


def lathe_rows(case: dict[str, Any], restore: bool) -> list[dict[str, list[int]]]:
    raw = {**case["cfg"], **(case.get("restore", {}) if restore else {})}
    raw = {k: v for k, v in raw.items() if v is not None}
    if "pretraining_dataset" not in raw:
        raw["datasets"] = [{"path": "unused.jsonl", **case["entry"]}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepared_rows(raw, tiny_tokenizer(**case["tokenizer"]), case["rows"])


def expected(case: dict[str, Any]) -> list[dict[str, list[int]]]:
    return [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in case["expected"]]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_rows_equal_axolotls(case: dict[str, Any]) -> None:
    assert lathe_rows(case, restore=True) == expected(case)


@pytest.mark.parametrize("case", [c for c in CASES if "restore" in c], ids=lambda c: c["id"])
def test_deliberate_differences_differ_without_their_key(case: dict[str, Any]) -> None:
    assert lathe_rows(case, restore=False) != expected(case)


def test_the_matrix_covers_every_option() -> None:
    ids = " ".join(c["id"] for c in CASES)
    for option in ("train_on_inputs", "roles_to_train", "train_on_eos", "eot_tokens", "train_on_eot", "bos",
                   "system column", "default_system_message", "long", "packed", "unpacked", "concatenated",
                   "alpaca_w_system", "alpaca:chatml", "input_output", "completion", "user_defined"):
        assert option in ids, option
