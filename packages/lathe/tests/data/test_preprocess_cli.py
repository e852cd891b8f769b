"""`lathe preprocess CFG [--debug]` on an Axolotl-style config, and the trained/masked rendering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lathe.cli.commands import cli
from lathe.data.preprocess import render_example, render_tokens
from lathe.testing import alpaca_rows, chat_rows, tiny_tokenizer, write_jsonl


def axolotl_config(tmp_path: Path) -> Path:
    """A config as written for Axolotl (its keys and meanings), pointing at local files."""
    tiny_tokenizer().save_pretrained(tmp_path / "model")
    write_jsonl(alpaca_rows(40), tmp_path / "alpaca.jsonl")
    write_jsonl(chat_rows(40), tmp_path / "chat.jsonl")
    write_jsonl([{"q": f"open door {i}", "a": "close"} for i in range(10)], tmp_path / "custom.jsonl")
    (tmp_path / "sharegpt.json").write_text(json.dumps([
        {"conversations": [{"from": "human", "value": f"say {w}"}, {"from": "gpt", "value": w.upper()}]}
        for w in ["red", "cat", "dog", "tree"]
    ]))
    config = {
        "base_model": str(tmp_path / "model"),
        "datasets": [
            {"path": str(tmp_path / "alpaca.jsonl"), "type": "alpaca"},
            {"path": str(tmp_path / "chat.jsonl"), "type": "chat_template", "field_messages": "messages",
             "message_property_mappings": {"role": "role", "content": "content"},
             "roles_to_train": ["assistant"], "train_on_eos": "turn"},
            {"path": str(tmp_path / "custom.jsonl"), "type": {
                "field_instruction": "q", "field_output": "a",
                "format": "[INST] {instruction} [/INST]", "no_input_format": "[INST] {instruction} [/INST]"}},
            {"path": str(tmp_path / "sharegpt.json"), "ds_type": "json", "type": "chat_template",
             "field_messages": "conversations", "message_field_role": "from", "message_field_content": "value"},
        ],
        "chat_template": "chatml",
        "dataset_prepared_path": "last_run_prepared",
        "val_set_size": 0.05,
        "sequence_len": 512,
        "sample_packing": True,
        "eval_sample_packing": False,
        "pad_to_sequence_len": True,
        "train_on_inputs": False,
        "micro_batch_size": 2,
        "num_epochs": 1,
        "output_dir": "./outputs/out",
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_axolotl_config_prepares_unchanged_and_debug_marks_trained_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["preprocess", str(axolotl_config(tmp_path)), "--debug"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "rows: 94 read" in out and "packing:" in out and "efficiency" in out and "dropped:" in out
    assert "EOS trained: yes" in out
    assert "[[" in out and "\x1b[" not in out
    assert "rendered: '<|im_start|>user\\n" in out and "tokens:   '<|im_start|>'=" in out
    assert "[['<|im_end|>'=" in out  # the turn's end token is listed as trained
    stages = sorted(p.parent.name for p in (tmp_path / "last_run_prepared").glob("*/lathe_prepared.json"))
    assert len(stages) == 2 and stages[1] == f"{stages[0]}-packed-2-1"  # tokenized, then packed for 2 x 1 rank


def test_preprocess_bad_key_exits_2_with_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lathe.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = axolotl_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["datasets"][1]["roles_to_trian"] = ["assistant"]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exit_info:
        main(["preprocess", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "datasets[1].roles_to_trian: unknown key" in err and "did you mean 'roles_to_train'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("colour", [False, True])
def test_render_example_marks_trained_runs(colour: bool) -> None:
    tok = tiny_tokenizer()
    prompt, answer = tok("Uppercase: red")["input_ids"], tok(" RED")["input_ids"]
    row: dict[str, Any] = {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}
    text = render_example(row, tok, colour)
    if colour:
        assert text == "\x1b[90mUppercase: red\x1b[0m\x1b[32m RED\x1b[0m"
    else:
        assert text == "Uppercase: red[[ RED]]"


def test_render_tokens_lists_each_token_with_its_id_and_mask() -> None:
    tok = tiny_tokenizer()
    prompt, answer = tok("red")["input_ids"], tok("<|im_end|>")["input_ids"]
    row: dict[str, Any] = {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}
    pieces = render_tokens(row, tok, colour=False).split(" ")
    assert pieces[-1] == f"[['<|im_end|>'={answer[-1]}]]" and not pieces[0].startswith("[[")
    assert "".join(p.split("'")[1] for p in pieces[:-1]) == "red"
