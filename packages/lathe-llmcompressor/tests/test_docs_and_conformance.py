"""The plugin conformance suite, and the config snippets of docs/plugins/llmcompressor.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lathe.config import ConfigError, validate
from lathe.plugins import Plugins
from lathe.testing import base_config
from lathe.testing.conformance import PluginConformance, yaml_blocks

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "llmcompressor.md"
SNIPPET = """\
plugins: [llmcompressor]
llmcompressor:
  recipe:
    finetuning_stage:
      finetuning_modifiers:
        ConstantPruningModifier:
          targets: ['re:.*q_proj.weight', 're:.*down_proj.weight']
          start: 0
  save_compressed: true
"""


class TestLLMCompressorConformance(PluginConformance):
    plugin_name = "llmcompressor"
    distribution = "lathe-llmcompressor"
    config_snippet = SNIPPET
    train_overrides = {"dataset_processes": 1}


def test_docs_have_config_snippets() -> None:
    assert len(yaml_blocks(DOC)) >= 2


@pytest.mark.parametrize("snippet", yaml_blocks(DOC))
def test_documented_snippet_validates(snippet: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import SEED_RECIPE

    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "sparse-finetune.yaml").write_text(yaml.safe_dump(SEED_RECIPE))
    data = {**base_config(tmp_path), **yaml.safe_load(snippet)}
    cfg = validate(data, Plugins.load(data["plugins"]))
    assert cfg.llmcompressor is not None


def test_a_bad_recipe_is_a_config_error(tmp_path: Path) -> None:
    data = {**base_config(tmp_path), "plugins": ["llmcompressor"],
            "llmcompressor": {"recipe": {"x_stage": {"x_modifiers": {"QuantizationModifier": {}}}}}}
    with pytest.raises(ConfigError, match="QuantizationModifier"):
        validate(data, Plugins.load(["llmcompressor"]))


@pytest.mark.parametrize("engine", [{"deepspeed": {"zero_optimization": {"stage": 3}}},
                                    {"fsdp_config": {"fsdp_version": 2}}])
def test_sharded_engines_are_refused(tmp_path: Path, engine: dict) -> None:
    """Masks are kept per whole weight; a sharded engine would split them across processes."""
    data = {**base_config(tmp_path), **yaml.safe_load(SNIPPET), **engine}
    with pytest.raises(ConfigError, match=f"llmcompressor: not available with {next(iter(engine))}"):
        validate(data, Plugins.load(["llmcompressor"]))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"adapter": "qlora", "load_in_4bit": True}, "quantized base"),
    ({"adapter": "lora", "peft_use_dora": True}, "peft_use_dora is not supported"),
])
def test_adapter_limits(overrides: dict, message: str, tmp_path: Path) -> None:
    data = {**base_config(tmp_path), **yaml.safe_load(SNIPPET), "lora_target_linear": True, **overrides}
    with pytest.raises(ConfigError, match=message):
        validate(data, Plugins.load(["llmcompressor"]))


def test_adapter_needs_a_whole_run_mask(tmp_path: Path) -> None:
    snippet = yaml.safe_load(SNIPPET.replace("start: 0", "start: 0\n          end: 1"))
    data = {**base_config(tmp_path), **snippet, "adapter": "lora", "lora_target_linear": True}
    with pytest.raises(ConfigError, match="start must be 0 and end unset"):
        validate(data, Plugins.load(["llmcompressor"]))
