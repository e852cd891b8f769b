"""The config snippets of docs/plugins/kd.md validate, and the keys they show reach the config."""

import json
import re
from pathlib import Path

import pytest
import yaml

from lathe.config import ConfigError, validate
from lathe.data.strategies import build_strategy, strategy_registry
from lathe.plugins import Plugins
from lathe.testing import base_config, tiny_tokenizer

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "kd.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_docs_have_config_snippets() -> None:
    assert len(_blocks("yaml")) >= 2


@pytest.mark.parametrize("snippet", _blocks("yaml"))
def test_documented_snippet_validates(snippet: str, tmp_path: Path) -> None:
    shown = yaml.safe_load(snippet)
    plugins = Plugins.load(shown["plugins"])
    cfg = validate({**base_config(tmp_path), **shown}, plugins)
    for key, value in shown.items():
        if key != "datasets":
            assert getattr(cfg, key) == value
    registry = strategy_registry(plugins)
    for i, entry in enumerate(cfg.datasets):  # the dataset keys are the strategy's
        strategy = build_strategy(entry, i, cfg, tiny_tokenizer(), registry)
        assert strategy.options["logprobs_field"] == shown["datasets"][i]["logprobs_field"]


def test_every_key_is_in_the_table() -> None:
    from lathe_kd.config import KDConfig

    text = DOC.read_text(encoding="utf-8")
    assert all(f"| `{key}` |" in text for key in KDConfig.model_fields)


def test_documented_row_shape_parses() -> None:
    from lathe_kd.teacher import parse_position

    row = json.loads(_blocks("json")[0].replace('"…"', "null"))
    assert parse_position(row["logprobs"][1], "row") == ([17, 99], [-0.02, -4.1])


@pytest.mark.parametrize(("key", "value"), [("kd_beta", 1.5), ("kd_temperature", 0), ("kd_alpha", -1)])
def test_out_of_range_values_name_the_key(key: str, value: float, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=key):
        validate({**base_config(tmp_path), "plugins": ["kd"], key: value}, Plugins.load(["kd"]))
