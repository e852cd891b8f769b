"""The plugin conformance suite, and the config snippets of docs/plugins/densemixer.md."""

from pathlib import Path

import pytest
import yaml

from lathe.config import validate
from lathe.plugins import Plugins
from lathe.testing import base_config
from lathe.testing.conformance import PluginConformance, yaml_blocks

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "densemixer.md"


class TestDenseMixerConformance(PluginConformance):
    plugin_name = "densemixer"
    distribution = "lathe-densemixer"
    config_snippet = "plugins: [densemixer]\ndense_mixer: true\n"
    arch = "qwen2_moe"
    train_overrides = {"dataset_processes": 1}  # tokenize in-process: tiny data, shared CPUs


def test_docs_have_a_config_snippet() -> None:
    assert yaml_blocks(DOC)


@pytest.mark.parametrize("snippet", yaml_blocks(DOC))
def test_documented_snippet_validates(snippet: str, tmp_path: Path) -> None:
    data = {**base_config(tmp_path, arch="qwen2_moe"), **yaml.safe_load(snippet)}
    cfg = validate(data, Plugins.load(data["plugins"]))
    for key, value in yaml.safe_load(snippet).items():
        assert getattr(cfg, key) == value
