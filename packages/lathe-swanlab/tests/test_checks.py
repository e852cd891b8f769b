"""The seed's validation, each with its message: errors stop the run before anything loads,
warnings name the way out."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from lathe.config import ConfigError, validate
from lathe.plugins import Plugins
from lathe.testing import base_config
from lathe_swanlab.checks import SwanLabLoggersError, SwanLabWarning
from lathe_swanlab.config import enabled


def _validate(tmp_path: Path, **keys: Any) -> Any:
    data = {**base_config(tmp_path), "plugins": ["swanlab"], **keys}
    return validate(data, Plugins.load(["swanlab"]), source="cfg.yaml")


def _errors(tmp_path: Path, **keys: Any) -> str:
    with pytest.raises(ConfigError) as info:
        _validate(tmp_path, **keys)
    return str(info.value)


def _warnings(tmp_path: Path, **keys: Any) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _validate(tmp_path, **keys)
    return [w for w in caught if issubclass(w.category, SwanLabWarning)]


def test_enabled_without_project_is_an_error(tmp_path: Path) -> None:
    message = _errors(tmp_path, use_swanlab=True)
    assert "SwanLab enabled but 'swanlab_project' is not set" in message
    assert "use_swanlab: false" in message


def test_empty_project_is_an_error(tmp_path: Path) -> None:
    message = _errors(tmp_path, use_swanlab=True, swanlab_project="  ")
    assert "swanlab_project" in message and "cannot be an empty string" in message


def test_invalid_mode_names_the_valid_ones(tmp_path: Path) -> None:
    message = _errors(tmp_path, swanlab_project="p", swanlab_mode="invalid-mode")
    assert "swanlab_mode" in message and "'invalid-mode' is not allowed" in message
    for valid in ("cloud", "local", "offline", "disabled"):
        assert valid in message


def test_keys_without_a_project_are_refused_not_ignored(tmp_path: Path) -> None:
    message = _errors(tmp_path, swanlab_mode="local")
    assert "swanlab_mode: SwanLab is off because swanlab_project is not set" in message


def test_lark_secret_without_url_is_refused(tmp_path: Path) -> None:
    message = _errors(tmp_path, swanlab_project="p", swanlab_mode="local", swanlab_lark_secret="s")
    assert "swanlab_lark_secret" in message and "swanlab_lark_webhook_url" in message
    assert "'s'" not in message


def test_log_model_in_local_mode_is_refused(tmp_path: Path) -> None:
    message = _errors(tmp_path, swanlab_project="p", swanlab_mode="local", swanlab_log_model=True)
    assert "swanlab_log_model" in message and "cloud mode" in message


def test_project_alone_enables_swanlab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _validate(tmp_path, swanlab_project="p", swanlab_mode="local")
    assert cfg.use_swanlab is None and enabled(cfg)
    assert "use_swanlab enabled automatically because swanlab_project is set" in capsys.readouterr().err
    assert not enabled(_validate(tmp_path))
    assert not enabled(_validate(tmp_path, use_swanlab=False, swanlab_project="p"))


def test_cloud_without_key_warns_with_the_four_ways_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (warning,) = _warnings(tmp_path, swanlab_project="p")
    text = str(warning.message)
    assert "cloud mode enabled but no API key found" in text
    for way in ("SWANLAB_API_KEY", "swanlab_api_key", "swanlab login", "swanlab_mode: local"):
        assert way in text
    monkeypatch.setenv("SWANLAB_API_KEY", "from-env")
    assert _warnings(tmp_path, swanlab_project="p") == []
    monkeypatch.delenv("SWANLAB_API_KEY")
    assert _warnings(tmp_path, swanlab_project="p", swanlab_api_key="k") == []
    assert _warnings(tmp_path, swanlab_project="p", swanlab_mode="offline") == []


def test_two_loggers_warn(tmp_path: Path) -> None:
    (warning,) = _warnings(tmp_path, swanlab_project="p", swanlab_mode="local", wandb_project="w")
    assert warning.category is SwanLabWarning
    assert "Multiple logging tools enabled: WandB, SwanLab" in str(warning.message)


def test_three_loggers_warn_at_error_level(tmp_path: Path) -> None:
    (warning,) = _warnings(tmp_path, swanlab_project="p", swanlab_mode="local", wandb_project="w",
                           mlflow_experiment_name="m")
    assert warning.category is SwanLabLoggersError
    assert "error: 3 logging tools enabled simultaneously (WandB, MLflow, SwanLab)" in str(warning.message)
    assert "~4.5% per training step" in str(warning.message)


def test_lark_url_without_secret_is_a_security_warning(tmp_path: Path) -> None:
    (warning,) = _warnings(tmp_path, swanlab_project="p", swanlab_mode="local",
                           swanlab_lark_webhook_url="http://127.0.0.1:9/hook")
    assert "Lark webhook has no secret configured" in str(warning.message)
    assert "swanlab_lark_secret" in str(warning.message)
    assert _warnings(tmp_path, swanlab_project="p", swanlab_mode="local",
                     swanlab_lark_webhook_url="http://127.0.0.1:9/hook", swanlab_lark_secret="s") == []


def test_use_swanlab_false_warns_that_its_keys_do_nothing(tmp_path: Path) -> None:
    (warning,) = _warnings(tmp_path, use_swanlab=False, swanlab_project="p", swanlab_mode="local")
    assert "SwanLab is off" in str(warning.message)


def test_env_fallbacks_fill_unset_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from lathe_swanlab.config import SwanLabConfig, setting

    cfg = SwanLabConfig(swanlab_project="p")
    monkeypatch.setenv("SWANLAB_API_KEY", "k-env")
    monkeypatch.setenv("SWANLAB_LARK_WEBHOOK_URL", "http://127.0.0.1:9/h")
    monkeypatch.setenv("SWANLAB_LARK_SECRET", "s-env")
    assert [setting(cfg, k) for k in ("swanlab_api_key", "swanlab_lark_webhook_url", "swanlab_lark_secret")] == [
        "k-env", "http://127.0.0.1:9/h", "s-env"]
    assert setting(SwanLabConfig(swanlab_api_key="k-cfg"), "swanlab_api_key") == "k-cfg"


def test_secrets_are_redacted_when_saved_and_refused_on_the_command_line(tmp_path: Path) -> None:
    import yaml

    from lathe.config import load_config, save_resolved
    from lathe.errors import LatheError

    secrets = {"swanlab_api_key": "KEY-123", "swanlab_lark_webhook_url": "https://open.feishu.cn/hook/TOKEN-456",
               "swanlab_lark_secret": "SECRET-789"}
    cfg = _validate(tmp_path, swanlab_project="p", swanlab_mode="local", **secrets)
    saved = save_resolved(cfg, tmp_path / "out").read_text()
    for key, value in secrets.items():
        assert value not in saved and yaml.safe_load(saved)[key] == "***"
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**base_config(tmp_path), "plugins": ["swanlab"], "swanlab_project": "p",
                                    "swanlab_mode": "local"}))
    for key, value in secrets.items():
        with pytest.raises(LatheError, match="secrets on the command line") as info:
            load_config(path, [f"{key}={value}"])
        assert value not in str(info.value)
