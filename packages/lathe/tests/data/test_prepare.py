"""prepare_datasets: sources, mixing, eval split, length policy, drop counts and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lathe.data.prepare import prepare_datasets
from lathe.data.tokenize import NO_TRAINABLE, TOO_LONG
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import alpaca_rows, text_rows, write_jsonl


def prep(make_cfg: Any, tok: Any, datasets: list[dict[str, Any]], **overrides: Any) -> Any:
    return prepare_datasets(make_cfg(datasets, **overrides), tok, Plugins())


def texts(tok: Any, ds: Any) -> list[str]:
    return sorted(tok.decode(r["input_ids"]) for r in ds)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet", "csv", "arrow"])
def test_file_formats_read_the_same_rows(make_cfg: Any, tok: Any, tmp_path: Path, fmt: str) -> None:
    import datasets

    rows = alpaca_rows(8)
    ds = datasets.Dataset.from_list(rows)
    path = tmp_path / f"data.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "jsonl":
        write_jsonl(rows, path)
    elif fmt == "parquet":
        ds.to_parquet(str(path))
    elif fmt == "csv":
        ds.to_csv(str(path), index=False)
    else:
        saved = tmp_path / "saved"
        ds.save_to_disk(str(saved))
        path = next(saved.glob("*.arrow"))
    reference = write_jsonl(rows, tmp_path / "ref" / "ref.jsonl")
    got = prep(make_cfg, tok, [{"path": str(path), "type": "alpaca"}], sequence_len=256)
    want = prep(make_cfg, tok, [{"path": str(reference), "type": "alpaca"}], sequence_len=256,
                dataset_prepared_path=str(tmp_path / "p2"))
    assert texts(tok, got.train) == texts(tok, want.train)
    assert got.report.rows_in == 8


def test_folder_data_files_and_saved_dataset(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    import datasets

    write_jsonl(alpaca_rows(4, seed=1), tmp_path / "dir" / "a.jsonl")
    write_jsonl(alpaca_rows(5, seed=2), tmp_path / "dir" / "b.jsonl")
    whole = prep(make_cfg, tok, [{"path": str(tmp_path / "dir"), "type": "alpaca"}], sequence_len=256)
    assert whole.report.rows_in == 9
    one = prep(make_cfg, tok, [{"path": str(tmp_path / "dir"), "data_files": "b.jsonl", "type": "alpaca"}],
               sequence_len=256)
    assert one.report.rows_in == 5
    datasets.Dataset.from_list(alpaca_rows(6)).save_to_disk(str(tmp_path / "saved"))
    saved = prep(make_cfg, tok, [{"path": str(tmp_path / "saved"), "type": "alpaca"}], sequence_len=256)
    assert saved.report.rows_in == 6
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_list(alpaca_rows(7)),
                                   "test": datasets.Dataset.from_list(alpaca_rows(3))})
    splits.save_to_disk(str(tmp_path / "dict"))
    picked = prep(make_cfg, tok, [{"path": str(tmp_path / "dict"), "split": "test", "type": "alpaca"}], sequence_len=256)
    assert picked.report.rows_in == 3
    with pytest.raises(LatheError, match=r"datasets\[0\]\.split: 'dev' is not one of train, test"):
        prep(make_cfg, tok, [{"path": str(tmp_path / "dict"), "split": "dev", "type": "alpaca"}])


def test_shards(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    path = write_jsonl(alpaca_rows(10), tmp_path / "a.jsonl")
    data = prep(make_cfg, tok, [{"path": str(path), "type": "alpaca", "shards": 2, "shards_idx": 1}], sequence_len=256)
    assert data.report.rows_in == 5


def test_several_datasets_are_mixed(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    a = write_jsonl(alpaca_rows(6), tmp_path / "a.jsonl")
    t = write_jsonl(text_rows(6), tmp_path / "t.jsonl")
    data = prep(make_cfg, tok, [{"path": str(a), "type": "alpaca"}, {"path": str(t), "type": "completion"}],
                sequence_len=256)
    assert data.report.rows_in == 12 and len(data.train) == 12
    kinds = ["### Instruction" in tok.decode(r["input_ids"]) for r in data.train]
    assert kinds != sorted(kinds) and kinds != sorted(kinds, reverse=True), "rows of both datasets are shuffled together"


@pytest.mark.parametrize("size", [0.25, 5])
def test_val_set_size_split_is_deterministic(make_cfg: Any, tok: Any, tmp_path: Path, size: float) -> None:
    path = write_jsonl(alpaca_rows(20), tmp_path / "a.jsonl")
    entry = [{"path": str(path), "type": "alpaca"}]
    one = prep(make_cfg, tok, entry, sequence_len=256, val_set_size=size)
    two = prep(make_cfg, tok, entry, sequence_len=256, val_set_size=size, dataset_prepared_path=str(tmp_path / "p2"))
    assert len(one.eval) == 5 and len(one.train) == 15
    assert texts(tok, one.eval) == texts(tok, two.eval)
    other = prep(make_cfg, tok, entry, sequence_len=256, val_set_size=size, seed=7)
    assert texts(tok, other.eval) != texts(tok, one.eval)


def test_test_datasets_give_the_eval_set(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    a = write_jsonl(alpaca_rows(6), tmp_path / "a.jsonl")
    b = write_jsonl(text_rows(3), tmp_path / "b.jsonl")
    data = prep(make_cfg, tok, [{"path": str(a), "type": "alpaca"}], sequence_len=256,
                test_datasets=[{"path": str(b), "type": "completion"}])
    assert len(data.train) == 6 and len(data.eval) == 3


def _long_and_short(tmp_path: Path) -> Path:
    rows = [{"segments": [{"text": t, "label": True}]} for t in ("red " * 5, "blue " * 200, "cat " * 6)]
    return write_jsonl(rows, tmp_path / "t.jsonl")


def test_excess_length_drop_counts(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    data = prep(make_cfg, tok, [{"path": str(_long_and_short(tmp_path)), "type": "input_output"}], sequence_len=32)
    assert len(data.train) == 2 and data.report.dropped == {TOO_LONG: 1}
    assert "1 longer than sequence_len" in data.report.lines()[0]


def test_excess_length_truncate(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    data = prep(make_cfg, tok, [{"path": str(_long_and_short(tmp_path)), "type": "input_output"}], sequence_len=32,
                excess_length_strategy="truncate")
    assert len(data.train) == 3 and max(len(r["input_ids"]) for r in data.train) == 32
    assert data.report.dropped == {}


def test_excess_length_raise_names_row(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    with pytest.raises(LatheError, match=r"datasets\[0\] row 1: \d+ tokens exceed sequence_len 32"):
        prep(make_cfg, tok, [{"path": str(_long_and_short(tmp_path)), "type": "input_output"}], sequence_len=32,
             excess_length_strategy="raise")


def test_rows_without_trainable_tokens_are_dropped_and_counted(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    rows = [{"segments": [{"text": "red cat", "label": False}]}, {"segments": [{"text": "blue dog", "label": True}]}]
    path = write_jsonl(rows, tmp_path / "s.jsonl")
    data = prep(make_cfg, tok, [{"path": str(path), "type": "input_output"}])
    assert len(data.train) == 1 and data.report.dropped == {NO_TRAINABLE: 1}


def test_dataset_empty_after_filtering_says_why(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    path = write_jsonl([{"segments": [{"text": "blue " * 100}]}] * 3, tmp_path / "t.jsonl")
    with pytest.raises(LatheError, match=r"datasets\[0\]: no row is left after filtering \(3 read; dropped: 3 longer than sequence_len"):
        prep(make_cfg, tok, [{"path": str(path), "type": "input_output"}], sequence_len=16)


def test_malformed_jsonl_names_file_and_line(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    path = write_jsonl(alpaca_rows(3), tmp_path / "bad.jsonl")
    with path.open("a") as f:
        f.write('{"instruction": "x", "output": \n')
    with pytest.raises(LatheError, match=rf"datasets\[0\]: {path}:4: malformed JSON line"):
        prep(make_cfg, tok, [{"path": str(path), "type": "alpaca"}])


def test_missing_local_file_is_named(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    with pytest.raises(LatheError, match=r"datasets\[0\]\.path: no such file or folder"):
        prep(make_cfg, tok, [{"path": str(tmp_path / "nope.jsonl"), "type": "alpaca"}])


def test_report_counts_trained_tokens_and_eos(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    path = write_jsonl(alpaca_rows(8), tmp_path / "a.jsonl")
    data = prep(make_cfg, tok, [{"path": str(path), "type": "alpaca"}], sequence_len=256)
    tokens = sum(len(r["input_ids"]) for r in data.train)
    trained = sum(sum(1 for x in r["labels"] if x != -100) for r in data.train)
    assert (data.report.tokens, data.report.trained_tokens) == (tokens, trained)
    assert data.report.eos_trained == 8
    assert sum(data.report.length_histogram.values()) == 8


def test_parallel_tokenizing_gives_the_same_rows(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    path = write_jsonl(alpaca_rows(600), tmp_path / "a.jsonl")
    entry = [{"path": str(path), "type": "alpaca"}]
    one = prep(make_cfg, tok, entry, sequence_len=256)
    two = prep(make_cfg, tok, entry, sequence_len=256, dataset_processes=2, dataset_prepared_path=str(tmp_path / "p2"))
    assert one.train["input_ids"] == two.train["input_ids"]


def test_parallel_tokenizing_with_a_plugin_config(make_cfg: Any, tok: Any, tmp_path: Path) -> None:
    """The run's config class (built with plugins' fields) cannot be pickled; workers get its values."""
    import types

    from pydantic import BaseModel

    from lathe.hookspecs import hookimpl

    class Fields(BaseModel):
        myplug_level: int = 1

    @hookimpl
    def lathe_config_model() -> type[BaseModel]:
        return Fields

    plugins = Plugins.from_modules({"myplug": types.SimpleNamespace(lathe_config_model=lathe_config_model)})
    path = write_jsonl(alpaca_rows(600), tmp_path / "a.jsonl")
    cfg = make_cfg([{"path": str(path), "type": "alpaca"}], plugins, sequence_len=256, dataset_processes=2)
    data = prepare_datasets(cfg, tok, plugins)
    assert len(data.train) == 600


@pytest.mark.parametrize("kind", ["pretrain", "completion"])
def test_streaming_gives_the_same_rows(make_cfg: Any, tok: Any, tmp_path: Path, kind: str) -> None:
    """`streaming: true` reads and tokenizes as rows arrive, in batches; the result is the same."""
    from lathe.data.strategies import ROWS_PER_BATCH

    rows = text_rows(2500)
    rows[7] = {"text": "blue " * 200}  # several rows for completion and pretrain
    path = write_jsonl(rows, tmp_path / "t.jsonl")
    batch = {"streaming_multipack_buffer_size": 1000, "pretraining_sample_concatenation": True}
    plain = prep(make_cfg, tok, [{"path": str(path), "type": kind}], sequence_len=64, **batch)
    streamed = prep(make_cfg, tok, [{"path": str(path), "type": kind, "streaming": True}], sequence_len=64,
                    dataset_prepared_path=str(tmp_path / "streamed"), **batch)
    assert streamed.train["input_ids"] == plain.train["input_ids"]
    assert streamed.report.rows_in == plain.report.rows_in == 2500
    assert streamed.report.dropped == plain.report.dropped
    assert ROWS_PER_BATCH < 2500, "the stream must span several batches"


def test_concatenated_pretraining_rows_restart_every_buffer_of_documents(make_cfg: Any, tok: Any,
                                                                         tmp_path: Path) -> None:
    path = write_jsonl([{"text": "red cat"}] * 10, tmp_path / "t.jsonl")
    entry = [{"path": str(path), "type": "pretrain"}]
    # each document is 2 tokens + EOS + pad: four fit a 16-token row
    whole = prep(make_cfg, tok, entry, sequence_len=16, pretraining_sample_concatenation=True)
    assert len(whole.train) == 3
    split = prep(make_cfg, tok, entry, sequence_len=16, pretraining_sample_concatenation=True,
                 streaming_multipack_buffer_size=5, dataset_prepared_path=str(tmp_path / "p2"))
    assert len(split.train) == 4  # 5 + 5 documents: 4 + 1 and 4 + 1
