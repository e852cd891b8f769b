"""Every bad input a user can give: a clear message naming the key, file, line or row; exit 2; no traceback."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.conftest import Workspace, assert_clean_failure, install_test_plugin


def test_malformed_yaml(ws: Workspace) -> None:
    path = ws.root / "cfg.yaml"
    path.write_text("base_model: m\ndatasets:\n  - path: x\n   type: alpaca\n")
    assert_clean_failure(ws.lathe("train", str(path)), "cfg.yaml at line 4", "malformed YAML")


def test_unknown_key(ws: Workspace) -> None:
    assert_clean_failure(ws.lathe("train", str(ws.config(micro_batch_sise=2))),
                         "micro_batch_sise", "did you mean 'micro_batch_size'")


def test_wrong_type_and_out_of_range(ws: Workspace) -> None:
    result = ws.lathe("train", str(ws.config(learning_rate="fast", lora_r=0)))
    assert_clean_failure(result, "learning_rate", "lora_r", "greater than or equal to 1")


def test_missing_dataset_file(ws: Workspace) -> None:
    cfg = ws.config(datasets=[{"path": str(ws.root / "nope.jsonl"), "type": "alpaca"}])
    assert_clean_failure(ws.lathe("preprocess", str(cfg)), "nope.jsonl")


def test_malformed_jsonl_line_names_file_and_line(ws: Workspace) -> None:
    bad = ws.root / "bad.jsonl"
    rows = [json.dumps({"instruction": "a", "input": "", "output": "b"})] * 3
    bad.write_text("\n".join([rows[0], rows[1], '{"instruction": "a", "output": ', rows[2]]) + "\n")
    cfg = ws.config(datasets=[{"path": str(bad), "type": "alpaca"}])
    assert_clean_failure(ws.lathe("preprocess", str(cfg)), "bad.jsonl:3")


def test_row_missing_a_field_the_strategy_needs(ws: Workspace) -> None:
    data = ws.root / "fields.jsonl"
    data.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n" + json.dumps({"question": "a"}) + "\n")
    cfg = ws.config(datasets=[{"path": str(data), "type": "alpaca"}])
    assert_clean_failure(ws.lathe("preprocess", str(cfg)), "instruction")


def test_every_row_over_sequence_len_is_explained(ws: Workspace) -> None:
    result = ws.lathe("preprocess", str(ws.config(sequence_len=8)))
    assert_clean_failure(result, "datasets[0]: no row is left", "24 read", "24 longer than sequence_len")


def test_all_labels_masked_is_refused_with_counts(ws: Workspace) -> None:
    from lathe.testing import chat_rows, write_jsonl

    rows = [r for r in chat_rows(8) if r["messages"][0]["role"] != "system"]
    data = write_jsonl(rows, ws.root / "chat.jsonl")
    entry = {"path": str(data), "type": "chat_template", "roles_to_train": ["system"], "train_on_eos": "none"}
    result = ws.lathe("preprocess", str(ws.config(datasets=[entry])))
    assert_clean_failure(result, "no row is left", f"{len(rows)} no trainable token")


def test_tokenizer_without_pad_token_warns_and_pads(ws: Workspace, tmp_path: Path) -> None:
    from lathe.testing import write_tiny_model

    model = write_tiny_model(tmp_path / "no-pad", pad_token=False)
    result = ws.lathe("preprocess", str(ws.config(base_model=str(model))))
    assert result.returncode == 0, result.stderr
    assert "the tokenizer has no pad token; using" in result.stderr


def test_tokenizer_without_chat_template_where_one_is_needed(ws: Workspace, tmp_path: Path) -> None:
    from lathe.testing import chat_rows, write_jsonl, write_tiny_model

    model = write_tiny_model(tmp_path / "no-template", chat_template=False)
    data = write_jsonl(chat_rows(4), tmp_path / "chat.jsonl")
    cfg = ws.config(base_model=str(model), datasets=[{"path": str(data), "type": "chat_template"}])
    assert_clean_failure(ws.lathe("preprocess", str(cfg)), "chat_template")


def test_output_dir_not_writable(ws: Workspace) -> None:
    blocker = ws.root / "file-not-dir"
    blocker.write_text("x")
    assert_clean_failure(ws.lathe("train", str(ws.config(output_dir=str(blocker / "out")))), "output_dir")


def test_output_dir_holding_another_runs_config(ws: Workspace) -> None:
    first = ws.lathe("train", str(ws.config(max_steps=1)))
    assert first.returncode == 0, first.stderr
    result = ws.lathe("train", str(ws.config(max_steps=1, learning_rate=5e-4)))
    assert_clean_failure(result, "output_dir", "overwrite_output_dir")


def test_plugin_missing(ws: Workspace) -> None:
    # every published plugin is installed in the e2e session: a misspelt name is the missing one here
    result = ws.lathe("train", str(ws.config(plugins=["ligr"])))
    assert_clean_failure(result, 'plugin "ligr" named in `plugins` is not installed', "did you mean 'liger'?")


def test_plugin_broken(ws: Workspace, tmp_path: Path) -> None:
    site = install_test_plugin(tmp_path / "site", "broken", "raise ImportError('needs libfoo')\n")
    result = ws.lathe("train", str(ws.config(plugins=["broken"])), env={"PYTHONPATH": str(site)})
    assert_clean_failure(result, 'Error loading plugin "broken" (lathe-test-broken 1.0)', "needs libfoo")


def test_plugins_conflicting(ws: Workspace, tmp_path: Path) -> None:
    site = tmp_path / "site"
    code = "from lathe.hookspecs import hookimpl\n\n@hookimpl\ndef lathe_optimizer(cfg, model):\n    import torch\n    return torch.optim.SGD(model.parameters(), lr=0.1)\n"
    install_test_plugin(site, "opt_a", code)
    install_test_plugin(site, "opt_b", code)
    result = ws.lathe("train", str(ws.config(plugins=["opt_a", "opt_b"])), env={"PYTHONPATH": str(site)})
    assert_clean_failure(result, "'opt_a' and 'opt_b' both answer lathe_optimizer")


def test_train_reports_the_data_before_training(ws: Workspace) -> None:
    result = ws.lathe("train", str(ws.config(max_steps=1)))
    assert result.returncode == 0, result.stderr
    assert "lathe: data: rows: 24 read" in result.stderr
    assert "lathe: data: EOS trained: yes" in result.stderr
