"""Axolotl's data keys beyond the parity matrix: pretraining_dataset, eot_tokens, min_sample_len, flags."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from lathe.config import ConfigError
from lathe.data.prepare import prepare_datasets
from lathe.data.strategies.chat import TemplateWarning
from lathe.data.strategies.text import overlapping_windows
from lathe.data.tokenize import TOO_SHORT
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import prepared_rows, text_rows, tiny_tokenizer, write_jsonl

from .helpers import trained_runs

CONVO = [{"role": "user", "content": "Uppercase: red cat"}, {"role": "assistant", "content": "RED CAT"}]


def chat_rows(tok: Any, rows: list[dict[str, Any]], entry: dict[str, Any] | None = None, **cfg: Any) -> list[Any]:
    raw = {"sequence_len": 128, "datasets": [{"path": "x.jsonl", "type": "chat_template", **(entry or {})}], **cfg}
    return prepared_rows(raw, tok, rows)


def test_windows_cover_every_token_with_the_stride_repeated() -> None:
    ids = list(range(61))
    windows = overlapping_windows(ids, 15, 7)
    assert [w[0] for w in windows] == [0, 8, 16, 24, 32, 40, 48] and windows[-1][-1] == 60
    assert all(a[-7:] == b[:7] for a, b in zip(windows, windows[1:], strict=False))
    assert overlapping_windows(ids[:15], 15, 7) == [ids[:15]]


def test_pretraining_dataset_reads_a_streamed_file_as_pretrain_windows(make_cfg: Any, tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    path = write_jsonl([{"body": r["text"]} for r in text_rows(12)], tmp_path / "c.jsonl")
    cfg = make_cfg([], pretraining_dataset=str(path), sequence_len=16, sample_packing=True, micro_batch_size=1)
    assert cfg.pretraining_dataset[0].streaming
    with pytest.raises(LatheError, match="missing field 'text'"):
        prepare_datasets(cfg, tok, Plugins())
    cfg = make_cfg([], pretraining_dataset=[{"path": str(path), "text_column": "body", "skip": 2}], sequence_len=16)
    data = prepare_datasets(cfg, tok, Plugins())
    assert data.report.rows_in == 10
    assert all(row["labels"] == row["input_ids"] and len(row["input_ids"]) <= 14 for row in data.train)


@pytest.mark.parametrize(("extra", "message"), [
    ({"pretraining_dataset": [{"path": "a"}, {"path": "b"}]}, "Axolotl reads only the first entry"),
    ({"pretraining_dataset": "a", "datasets": [{"path": "x.jsonl", "type": "alpaca"}]}, "not both"),
])
def test_pretraining_dataset_refusals(make_cfg: Any, extra: dict[str, Any], message: str) -> None:
    datasets = extra.pop("datasets", [])
    with pytest.raises(ConfigError, match=message):
        make_cfg(datasets, **extra)


def test_min_sample_len_drops_short_rows(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    texts = ("red", "red cat", "red cat blue dog")
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    assert lengths[0] == 1 and lengths[1] == 2 and lengths[2] > 2
    rows = [{"segments": [{"text": t}]} for t in texts]
    raw = {"sequence_len": 64, "datasets": [{"path": "x.jsonl", "type": "input_output"}]}
    assert [len(r["input_ids"]) for r in prepared_rows(raw, tok, rows)] == lengths[1:]
    assert [len(r["input_ids"]) for r in prepared_rows({**raw, "min_sample_len": 3}, tok, rows)] == lengths[2:]
    assert TOO_SHORT == "shorter than min_sample_len"


def test_eot_tokens_of_several_tokens_is_an_error() -> None:
    with pytest.raises(LatheError, match="eot_tokens: 'red cat' is 2 tokens"):
        chat_rows(tiny_tokenizer(), [{"messages": CONVO}], {"chat_template": "jinja", "chat_template_jinja":
                  "{% for m in messages %}{{ m['content'] }}red cat{% endfor %}"}, eot_tokens=["red cat"])


def test_eos_among_eot_tokens_needs_equal_train_on_eos_and_eot() -> None:
    tok = tiny_tokenizer(eos_token="<|endoftext|>")
    template = "{% for m in messages %}{{ m['content'] + '<|im_end|><|endoftext|>' }}{% endfor %}"
    with pytest.raises(LatheError, match=r"train_on_eos \(turn\) and train_on_eot \(none\) differ"):
        chat_rows(tok, [{"messages": CONVO}], {"chat_template": "jinja", "chat_template_jinja": template,
                                               "train_on_eot": "none"}, eot_tokens=["<|im_end|>", "<|endoftext|>"])


def test_eot_token_missing_from_the_template_is_ignored_with_a_warning() -> None:
    with pytest.warns(TemplateWarning, match="'<|endoftext|>' is not in the chat template; ignored"):
        rows = chat_rows(tiny_tokenizer(), [{"messages": CONVO}], eot_tokens=["<|im_end|>", "<|endoftext|>"])
    assert trained_runs(rows[0], tiny_tokenizer()) == ["RED CAT<|im_end|>"]


def test_a_template_that_never_writes_eos_warns_that_turn_ends_are_not_trained() -> None:
    tok = tiny_tokenizer(eos_token="<|endoftext|>")
    plain = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}"
    with pytest.warns(TemplateWarning, match="turn ends will not be trained"):
        rows = chat_rows(tok, [{"messages": CONVO}], {"chat_template": "jinja", "chat_template_jinja": plain})
    assert trained_runs(rows[0], tok) == ["RED CAT"]


def test_lathe_default_trains_the_templates_turn_end_and_eot_tokens_restores_axolotls() -> None:
    tok = tiny_tokenizer(eos_token="<|endoftext|>")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default finds <|im_end|>: no warning
        ours = chat_rows(tok, [{"messages": CONVO}])
    assert trained_runs(ours[0], tok) == ["RED CAT<|im_end|>"]
    with pytest.warns(TemplateWarning):
        axolotls = chat_rows(tok, [{"messages": CONVO}], eot_tokens=["<|endoftext|>"])
    assert trained_runs(axolotls[0], tok) == ["RED CAT"]


def test_message_field_training_overrides_roles() -> None:
    tok = tiny_tokenizer()
    messages = [{**CONVO[0], "train": True}, {**CONVO[1], "train": False}]
    rows = chat_rows(tok, [{"messages": messages}], {"message_field_training": "train"})
    assert trained_runs(rows[0], tok) == ["Uppercase: red cat<|im_end|>"]


def test_a_rows_tools_and_tool_calls_reach_the_template() -> None:
    tok = tiny_tokenizer()
    template = ("{% for t in tools or [] %}{{ 'TOOL ' + t['name'] + '\\n' }}{% endfor %}{% for m in messages %}"
                "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] }}{% if m.tool_calls %}"
                "{{ ' CALL ' + m.tool_calls[0]['name'] }}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}")
    messages = [CONVO[0], {**CONVO[1], "tool_calls": [{"name": "upper"}]}]
    rows = chat_rows(tok, [{"messages": messages, "tools": '[{"name": "upper"}]'}],
                     {"chat_template": "jinja", "chat_template_jinja": template})
    assert tok.decode(rows[0]["input_ids"]).startswith("TOOL upper\n<|im_start|>user")
    assert trained_runs(rows[0], tok) == ["RED CAT CALL upper<|im_end|>"]


def test_the_report_counts_trained_end_of_turn_tokens(make_cfg: Any, tmp_path: Path) -> None:
    from lathe.data.prepare import DataWarning

    tok = tiny_tokenizer(eos_token="<|endoftext|>")
    path = write_jsonl([{"messages": CONVO}] * 3, tmp_path / "c.jsonl")
    entry = [{"path": str(path), "type": "chat_template"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        data = prepare_datasets(make_cfg(entry), tok, Plugins())
    assert data.report.eos_trained == 3 and "EOS trained: yes" in data.report.lines()[2]
    with pytest.warns(DataWarning, match="no EOS or end-of-turn token is trained"):
        prepare_datasets(make_cfg(entry, eot_tokens=["<|endoftext|>"]), tok, Plugins())
