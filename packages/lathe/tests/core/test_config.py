"""The typed config: clear errors, overrides, Axolotl compatibility, resolved-config writing."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from lathe.config import (
    ConfigError,
    apply_overrides,
    load_config,
    read_yaml,
    save_resolved,
    validate,
)
from lathe.config.compat import CompatWarning
from lathe.errors import LatheError
from lathe.plugins import Plugins

BASE = {"base_model": "m", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_misspelled_key_suggests_and_gives_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "learning_rat (line 5): unknown key; did you mean 'learning_rate'?" in str(info.value)


def test_nested_error_has_dotted_path_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n    shards: 0\n")
    with pytest.raises(ConfigError, match=r"datasets\[0\]\.shards \(line 5\): given 0"):
        load_config(path)


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "base_model: m\ndatasets: [\n  a: b\n")
    with pytest.raises(LatheError, match=r"cfg.yaml at line \d+, column \d+: malformed YAML"):
        read_yaml(path)


def test_type_and_range_errors_name_key_and_expectation() -> None:
    with pytest.raises(ConfigError) as info:
        validate({**BASE, "micro_batch_size": "four", "lora_dropout": 1.5, "lr_scheduler": "cosin"}, Plugins())
    text = str(info.value)
    assert "micro_batch_size: given 'four'" in text and "integer" in text
    assert "lora_dropout: given 1.5" in text and "less than 1" in text
    assert "lr_scheduler: 'cosin' is not allowed" in text and "did you mean 'cosine'" in text


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match="base_model: required key is missing"):
        validate({"datasets": BASE["datasets"]}, Plugins())


def test_cross_field_rules_checked_before_loading() -> None:
    with pytest.raises(ConfigError, match="early_stopping_patience needs an eval set"):
        validate({**BASE, "early_stopping_patience": 2}, Plugins())
    with pytest.raises(ConfigError, match="adapter: qlora needs load_in_4bit"):
        validate({**BASE, "adapter": "qlora"}, Plugins())
    with pytest.raises(ConfigError, match="warmup_steps or warmup_ratio"):
        validate({**BASE, "warmup_steps": 1, "warmup_ratio": 0.1}, Plugins())


def test_overrides_reach_nested_and_list_keys() -> None:
    data = {**BASE, "diffusion": {"eps": 0.1}}
    out = apply_overrides(data, ["learning_rate=3e-4", "datasets.0.path=other.jsonl", "diffusion.eps=0.01", "new.block=x"])
    assert out["learning_rate"] == 3e-4  # YAML 1.1 would read "3e-4" as a string
    assert out["datasets"][0]["path"] == "other.jsonl"
    assert out["diffusion"]["eps"] == 0.01 and out["new"] == {"block": "x"}
    assert data["datasets"][0]["path"] == "d.jsonl"  # the original is not changed
    with pytest.raises(LatheError, match="not an index"):
        apply_overrides(data, ["datasets.5.path=x"])
    with pytest.raises(LatheError, match="expected key=value"):
        apply_overrides(data, ["learning_rate"])


def test_axolotl_attention_switch_and_renamed_and_ignored_keys() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = validate({**BASE, "flash_attention": True, "model_revision": "abc", "strict": True}, Plugins())
    assert cfg.attn_implementation == "flash_attention_2"
    assert cfg.revision_of_model == "abc"
    messages = [str(w.message) for w in caught if issubclass(w.category, CompatWarning)]
    assert any("'model_revision' is now 'revision_of_model'" in m for m in messages)
    assert any("'strict' has no effect" in m for m in messages)
    with pytest.raises(ConfigError, match="choose one attention backend"):
        validate({**BASE, "flash_attention": True, "sdp_attention": True}, Plugins())


def test_config_is_frozen() -> None:
    cfg = validate(BASE, Plugins())
    with pytest.raises(Exception, match="frozen"):
        cfg.learning_rate = 1.0  # type: ignore[misc]


def test_resolved_config_written_with_secrets_redacted(tmp_path: Path) -> None:
    cfg = validate({**BASE, "hub_token": "hf_SECRET", "wandb_api_key": "wb_SECRET",
                    "datasets": [{"path": "d", "type": "alpaca", "auth_token": "tok_SECRET"}]}, Plugins())
    path = save_resolved(cfg, tmp_path / "out")
    text = path.read_text()
    assert "SECRET" not in text
    saved = yaml.safe_load(text)
    assert saved["hub_token"] == "***" and saved["lathe_version"]
    assert saved["learning_rate"] == cfg.learning_rate  # defaults are resolved


def test_secrets_are_refused_on_the_command_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n")
    with pytest.raises(LatheError, match="secrets on the command line") as info:
        load_config(path, ["hub_token=hf_abc123"])
    assert "hf_abc123" not in str(info.value)


def test_a_plugins_secret_fields_are_refused_on_the_command_line(tmp_path: Path) -> None:
    import types

    from lathe.config import ConfigModel, secret_field
    from lathe.hookspecs import hookimpl

    class HookCfg(ConfigModel):
        notify_webhook_url: str | None = secret_field()  # not named like a secret: only the mark says so

    module = types.ModuleType("notifier")
    module.lathe_config_model = hookimpl(lambda: HookCfg)  # type: ignore[attr-defined]
    plugins = Plugins.from_modules({"notifier": module})
    path = _write(tmp_path, "base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nplugins: [notifier]\n")
    with pytest.raises(LatheError, match="secrets on the command line") as info:
        load_config(path, ["notify_webhook_url=https://hook/abc123"], plugins=plugins)
    assert "abc123" not in str(info.value)
    cfg, _ = load_config(path, ["learning_rate=0.1"], plugins=plugins)
    assert cfg.learning_rate == 0.1


def test_a_loaded_config_knows_its_folder_and_never_saves_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "cfg.yaml"
    path.write_text(yaml.safe_dump(BASE))
    monkeypatch.chdir(tmp_path)
    cfg, _ = load_config("configs/cfg.yaml")
    assert cfg.config_dir == (tmp_path / "configs").resolve()
    assert cfg.model_copy(update={"max_steps": 3}).config_dir == cfg.config_dir
    assert validate(BASE, Plugins()).config_dir is None  # built from a dict
    saved = save_resolved(cfg, tmp_path / "out").read_text()
    assert "configs" not in saved and "config_dir" not in yaml.safe_load(saved)
