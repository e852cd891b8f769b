"""Each prompt strategy's tokens and label mask, read back as text."""

from __future__ import annotations

import types
from typing import Any

import pytest

from lathe.data.strategies import (
    DatasetKeyWarning,
    PromptStrategy,
    build_strategy,
    core_strategies,
    strategy_registry,
)
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import alpaca_rows

from .helpers import trained_runs

ROW = {"instruction": "Repeat the words", "input": "red cat", "output": "cat red"}


def strategy(make_cfg: Any, tok: Any, entry: dict[str, Any], **cfg: Any) -> PromptStrategy:
    config = make_cfg([{"path": "unused.jsonl", **entry}], **cfg)
    return build_strategy(config.datasets[0], "datasets[0]", config, tok, core_strategies())


def test_alpaca_trains_output_and_eos_only(make_cfg: Any, tok: Any) -> None:
    ex = strategy(make_cfg, tok, {"type": "alpaca"}).tokenize(ROW)
    assert trained_runs(ex, tok) == ["cat red<|im_end|>"]
    assert "### Input:\nred cat\n\n### Response:\n" in tok.decode(ex["input_ids"])


def test_alpaca_without_input_uses_the_short_prompt(make_cfg: Any, tok: Any) -> None:
    ex = strategy(make_cfg, tok, {"type": "alpaca"}).tokenize({**ROW, "input": ""})
    assert "### Input" not in tok.decode(ex["input_ids"])


def test_train_on_inputs_trains_the_prompt_too(make_cfg: Any, tok: Any) -> None:
    ex = strategy(make_cfg, tok, {"type": "alpaca"}, train_on_inputs=True).tokenize(ROW)
    assert ex["labels"] == ex["input_ids"]


def test_alpaca_chatml(make_cfg: Any, tok: Any) -> None:
    ex = strategy(make_cfg, tok, {"type": "alpaca_chatml"}).tokenize(ROW)
    text = tok.decode(ex["input_ids"])
    assert text.startswith("<|im_start|>user\nRepeat the words\n\nred cat<|im_end|>\n<|im_start|>assistant\n")
    assert trained_runs(ex, tok) == ["cat red<|im_end|>"]


def test_completion_trains_everything_with_eos(make_cfg: Any, tok: Any) -> None:
    [ex] = strategy(make_cfg, tok, {"type": "completion", "field": "body"}).tokenize_batch([{"body": "seven cold stones"}])
    assert trained_runs(ex, tok) == ["seven cold stones<|im_end|>"]


def test_input_output_segments(make_cfg: Any, tok: Any) -> None:
    row = {"segments": [{"text": "Q: red?", "label": False}, {"text": " A: blue.", "label": True},
                        {"text": " Q: cat?", "label": False}, {"text": " A: dog.", "label": True}]}
    ex = strategy(make_cfg, tok, {"type": "input_output"}).tokenize(row)
    assert tok.decode(ex["input_ids"]) == "Q: red? A: blue. Q: cat? A: dog."
    assert trained_runs(ex, tok) == [" A: blue.", " A: dog."]


def test_user_defined_format(make_cfg: Any, tok: Any) -> None:
    fmt = {"field_instruction": "q", "field_input": "ctx", "field_output": "a",
           "format": "[INST] {instruction} | {input} [/INST]", "no_input_format": "[INST] {instruction} [/INST]"}
    s = strategy(make_cfg, tok, {"type": fmt})
    ex = s.tokenize({"q": "open", "ctx": "door", "a": "close"})
    assert tok.decode(ex["input_ids"]) == "[INST] open | door [/INST]close<|im_end|>"
    assert trained_runs(ex, tok) == ["close<|im_end|>"]
    bare = s.tokenize({"q": "open", "ctx": "", "a": "close"})
    assert tok.decode(bare["input_ids"]) == "[INST] open [/INST]close<|im_end|>"


def test_unknown_entry_key_names_the_key_with_a_suggestion(make_cfg: Any, tok: Any) -> None:
    with pytest.raises(LatheError, match=r"datasets\[0\]\.field_mesages: unknown key.*did you mean 'field_messages'"):
        strategy(make_cfg, tok, {"type": "chat_template", "field_mesages": "conversations"})


def test_unknown_type_suggests(make_cfg: Any, tok: Any) -> None:
    with pytest.raises(LatheError, match=r"datasets\[0\]\.type: unknown prompt strategy 'alpacca'; did you mean 'alpaca'"):
        strategy(make_cfg, tok, {"type": "alpacca"})


def test_missing_field_is_named(make_cfg: Any, tok: Any, tmp_path: Any) -> None:
    from lathe.data.prepare import prepare_datasets
    from lathe.testing import write_jsonl

    rows = alpaca_rows(4)
    del rows[2]["output"]
    path = write_jsonl(rows, tmp_path / "a.jsonl")
    cfg = make_cfg([{"path": str(path), "type": "alpaca"}])
    with pytest.raises(LatheError, match=r"datasets\[0\] row 2: missing field 'output'"):
        prepare_datasets(cfg, tok, Plugins())


class _Shout(PromptStrategy):
    def tokenize(self, row: dict[str, Any]) -> dict[str, list[int]]:
        ids = self.encode(str(row["text"]).upper(), first=True)
        return {"input_ids": ids, "labels": ids}


def _plugin(answer: dict[str, Any]) -> Plugins:
    from lathe.hookspecs import hookimpl

    @hookimpl
    def lathe_prompt_strategies() -> dict[str, Any]:
        return answer

    return Plugins.from_modules({"shouty": types.SimpleNamespace(lathe_prompt_strategies=lathe_prompt_strategies)})


def test_plugin_strategy_is_registered(make_cfg: Any, tok: Any, tmp_path: Any) -> None:
    from lathe.data.prepare import prepare_datasets
    from lathe.testing import write_jsonl

    plugins = _plugin({"shout": _Shout})
    path = write_jsonl([{"text": "red cat"}] * 3, tmp_path / "t.jsonl")
    data = prepare_datasets(make_cfg([{"path": str(path), "type": "shout"}], plugins), tok, plugins)
    assert tok.decode(data.train[0]["input_ids"]) == "RED CAT"


def test_plugin_strategy_name_clash_names_both(tok: Any) -> None:
    with pytest.raises(LatheError, match="'alpaca' is defined by both 'core' and plugin 'shouty'"):
        strategy_registry(_plugin({"alpaca": _Shout}))


def test_old_axolotl_keys_map_with_a_warning(make_cfg: Any, tok: Any) -> None:
    entry = {"type": "chat_template", "field_messages": "conversations", "message_field_role": "from",
             "message_field_content": "value"}
    with pytest.warns(DatasetKeyWarning, match="message_field_role is now 'message_property_mappings.role'"):
        s = strategy(make_cfg, tok, entry)
    row = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "HI"}]}
    assert trained_runs(s.tokenize(row), tok) == ["HI<|im_end|>"]
