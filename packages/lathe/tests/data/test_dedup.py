"""dataset_exact_deduplication: repeated rows (after tokenization) are dropped and counted,
across the merged sources, before the eval split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lathe.data.dedup import REASON
from lathe.data.prepare import prepare_datasets
from lathe.plugins import Plugins
from lathe.testing import alpaca_rows, write_jsonl


def test_exact_duplicates_are_dropped_and_counted(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    rows = alpaca_rows(6)
    write_jsonl(rows + rows[:2], tmp_path / "a.jsonl")  # 2 repeats within the file
    write_jsonl(rows[2:4], tmp_path / "b.jsonl")  # 2 repeats of the first file's rows
    sources = [{"path": str(tmp_path / "a.jsonl"), "type": "alpaca"}, {"path": str(tmp_path / "b.jsonl"), "type": "alpaca"}]
    plain = prepare_datasets(make_cfg(sources), tok, Plugins())
    deduped = prepare_datasets(make_cfg(sources, dataset_exact_deduplication=True), tok, Plugins())
    assert len(plain.train) == 10 and len(deduped.train) == 6
    assert deduped.report.dropped[REASON] == 4
    assert len({tuple(r["input_ids"]) for r in deduped.train}) == 6
    split = prepare_datasets(make_cfg(sources, dataset_exact_deduplication=True, val_set_size=2), tok, Plugins())
    seen = {tuple(r["input_ids"]) for r in split.train}
    assert len(split.train) == 4 and not any(tuple(r["input_ids"]) in seen for r in split.eval)
