"""The Axolotl contract: every Axolotl key has exactly one status, refused keys fail with their
reason and YAML line, null is unset, the compatibility page is current, every field is read."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from lathe.config import ConfigError, load_config, validate
from lathe.config.compat import table
from lathe.config.compat.docs import render, value_statuses
from lathe.config.compat.status import all_top_level_keys, axolotl_keys, status_of, table_problems
from lathe.config.schema import CoreConfig
from lathe.plugins import Plugins

ROOT = Path(__file__).resolve().parents[4]
# An unpacked axolotl 0.19.0 wheel, for the check that the committed key list is what it holds.
AXOLOTL_SRC = os.environ.get("AXOLOTL_SRC", "")
SRC = ROOT / "packages" / "lathe" / "src" / "lathe"
BASE = {"base_model": "m", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}


def _load(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n" + text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_key_list_records_axolotl_version_and_enums() -> None:
    data = axolotl_keys()
    assert data["axolotl_version"] == "0.19.0"
    assert {"fsdp_config", "lora_r", "sample_packing", "model_config"} <= set(data["top_level"])
    assert data["top_level"]["model_config"]["alias_of"] == "overrides_of_model_config"
    assert "grokfast_alpha" in data["integrations"]["grokfast"]["keys"]
    assert "dpo" in data["enums"]["rl"] and "qwen3" in data["enums"]["chat_template"]
    assert "alpaca:chat" in data["enums"]["dataset_type"]["sft"]


def test_every_axolotl_key_has_exactly_one_status() -> None:
    assert table_problems() == []
    assert all(status_of(k) is not None for k in all_top_level_keys())
    for name, rows in value_statuses().items():
        assert rows, name


def test_a_core_field_listed_as_refused_fails_telling_to_delete_the_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(table.REFUSED, "learning_rate", "not available")
    assert table_problems() == [
        "'learning_rate' has two statuses (a core config field and REFUSED): "
        "delete its entry in REFUSED (lathe/config/compat/table.py)"
    ]


def test_a_key_without_status_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(table.REFUSED, "gradio_title")
    assert "'gradio_title' has no status" in table_problems()[0]


def test_a_plugin_that_lands_is_a_one_line_flip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(table.PLUGINS, "rl", False)
    assert status_of("rl_beta").kind == "refused"  # type: ignore[union-attr]
    assert "rl integration, which is not available" in status_of("rl_beta").detail  # type: ignore[union-attr]
    monkeypatch.setitem(table.PLUGINS, "rl", True)
    assert tuple(status_of("rl_beta")) == ("implemented", "rl")  # type: ignore[arg-type]


def test_compatibility_page_is_current() -> None:
    committed = (ROOT / "docs" / "axolotl-compatibility.md").read_text()
    assert committed == render(), "run: python -m lathe.config.compat.docs > docs/axolotl-compatibility.md"


@pytest.mark.skipif(not AXOLOTL_SRC, reason="set AXOLOTL_SRC to an unpacked axolotl 0.19.0 wheel (the nox test sessions do)")
def test_key_list_is_what_the_script_reads_from_axolotl() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "axolotl_keys.py"), AXOLOTL_SRC],
                         capture_output=True, text=True, check=True).stdout
    fresh, committed = json.loads(out), dict(axolotl_keys())
    fresh.pop("transformers"), committed.pop("transformers")  # the installed transformers may differ
    assert fresh == committed


def test_refused_keys_fail_with_reason_and_line_all_at_once(tmp_path: Path) -> None:
    text = _load(tmp_path, "heads_k_stride: 1\ngradio_title: x\ngradio_share: true\n"
                           "deepspeed: ds.json\npush_dataset_to_hub: me/data\nddp_timeout: 0\nlearning_rat: 1\n")
    assert "heads_k_stride (line 5): not available in lathe: this multi-GPU option" in text
    assert "gradio_title (line 6): not available in lathe: the Gradio UI" in text
    assert "deepspeed (line 8): given 'ds.json': no file 'ds.json', and not the name of a shipped DeepSpeed config" in text
    assert "push_dataset_to_hub (line 9): not available in lathe: pushing the prepared dataset" in text
    assert "ddp_timeout (line 10)" in text
    assert "learning_rat (line 11): unknown key; did you mean 'learning_rate'?" in text


def test_a_refused_switch_turned_off_asks_for_nothing() -> None:
    cfg = validate({**BASE, "use_comet": False, "tiled_mlp": False, "fsdp": None, "deepspeed": ""}, Plugins())
    assert cfg.base_model == "m" and cfg.deepspeed is None
    with pytest.raises(ConfigError, match="use_comet: not available in lathe: this experiment tracker"):
        validate({**BASE, "use_comet": True}, Plugins())


def test_no_op_keys_warn_and_refuse_other_values() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate({**BASE, "save_safetensors": True, "sample_packing_bin_size": 200}, Plugins())
    assert any("'save_safetensors' has no effect in lathe" in str(w.message) for w in caught)
    with pytest.raises(ConfigError, match="save_safetensors: False is not available: lathe always saves safetensors"):
        validate({**BASE, "save_safetensors": False}, Plugins())


def test_alias_renames_and_both_spellings_conflict() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = validate({**BASE, "model_config": {"rope_theta": 1.0}, "dataset_num_proc": 2}, Plugins())
        assert cfg.overrides_of_model_config == {"rope_theta": 1.0} and cfg.dataset_processes == 2
        with pytest.raises(ConfigError, match="set model_config or overrides_of_model_config, not both"):
            validate({**BASE, "model_config": {}, "overrides_of_model_config": {"a": 1}}, Plugins())


def test_null_and_empty_string_mean_unset(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n    split:\n    name: ''\n"
                    "lora_r:\nsample_packing:\noptimizer:\nlr_scheduler: ''\nlearning_rate:\nbf16:\n"
                    "wandb_project: ''\ndefault_system_message: ''\n")
    cfg, _ = load_config(path)
    defaults = CoreConfig.model_fields
    assert cfg.lora_r == defaults["lora_r"].default and cfg.sample_packing is False
    assert cfg.optimizer == "adamw_torch_fused" and cfg.lr_scheduler == "cosine" and cfg.bf16 == "auto"
    assert cfg.wandb_project is None and cfg.default_system_message == ""
    assert cfg.datasets[0].split == "train" and cfg.datasets[0].name is None
    cfg2, _ = load_config(path, ["learning_rate=", "lora_r=4"])
    assert cfg2.lora_r == 4


def test_refused_dataset_keys_name_the_entry_and_line(tmp_path: Path) -> None:
    text = _load(tmp_path, "test_datasets:\n  - path: e.jsonl\n    type: alpaca\n    length: 3\n    trust_remote_code: true\n"
                           "val_set_size: 0\n")
    assert "test_datasets[0].length (line 8): not available in lathe: synthetic datasets" in text
    assert "test_datasets[0].trust_remote_code (line 9): not available in lathe: a dataset's remote code" in text


def test_union_errors_show_no_pydantic_branch_names(tmp_path: Path) -> None:
    text = _load(tmp_path, "gradient_checkpointing: sometimes\n")
    assert "gradient_checkpointing (line 5): given 'sometimes'" in text
    assert "gradient_checkpointing.bool" not in text and "literal" not in text.split("given")[0]
    assert text.count("gradient_checkpointing (line 5)") == 1


def test_cross_field_errors_name_a_yaml_line(tmp_path: Path) -> None:
    text = _load(tmp_path, "early_stopping_patience: 2\n")
    assert "early_stopping_patience (line 5): early_stopping_patience needs an eval set" in text


def test_a_plugin_that_is_not_installed_hides_nothing_else(tmp_path: Path) -> None:
    text = _load(tmp_path, "plugins: [not_a_plugin]\nlora_r: zero\nrl: dpo\ngradio_title: x\n")
    assert 'plugins (line 5): plugin "not_a_plugin" named in `plugins` is not installed' in text
    assert "lora_r (line 6): given 'zero'" in text
    assert "rl (line 7): " in text and "gradio_title (line 8): not available in lathe: the Gradio UI" in text


def test_keys_of_an_available_plugin_that_is_not_installed_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(table.PLUGINS, "rl", True)  # as if lathe-rl existed but is not installed here
    text = _load(tmp_path, "rl: dpo\nlora_r: 0\n")
    assert "rl (line 5): this key is implemented by plugin 'rl', which is not installed; pip install lathe-rl" in text
    assert text.count("rl (line 5)") == 1
    assert "lora_r (line 6)" in text


# Fields read inside config/ only, where a validator turns them into another field.
READ_IN_CONFIG: dict[str, str] = {
    "flash_attention": "CoreConfig._attention_switches → attn_implementation",
    "sdp_attention": "CoreConfig._attention_switches → attn_implementation",
    "flex_attention": "CoreConfig._attention_switches → attn_implementation",
    "eager_attention": "CoreConfig._attention_switches → attn_implementation",
}


def _names_read(root: Path) -> set[str]:
    """Attribute names and string constants in lathe's sources outside config/ (how fields are read)."""
    names: set[str] = set()
    for path in root.rglob("*.py"):
        if "config" in path.relative_to(root).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    return names


def test_every_core_field_is_read_outside_config() -> None:
    read = _names_read(SRC)
    unread = sorted(f for f in CoreConfig.model_fields if f not in read and f not in READ_IN_CONFIG)
    assert unread == [], f"config fields nothing outside lathe/config reads (accepted and ignored): {unread}"
    stale = sorted(f for f in READ_IN_CONFIG if f not in CoreConfig.model_fields)
    assert stale == [], f"delete these from READ_IN_CONFIG (no longer fields): {stale}"
