"""The config snippets of docs/plugins/diffusion.md validate, and every key shown reaches the config."""

import re
from pathlib import Path

import pytest
import yaml

from lathe.config import ConfigError, validate
from lathe.plugins import Plugins
from lathe.testing import base_config

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "diffusion.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_docs_have_config_snippets() -> None:
    assert len(_yaml_blocks()) >= 2


@pytest.mark.parametrize("snippet", _yaml_blocks())
def test_documented_snippet_validates(snippet: str, tmp_path: Path) -> None:
    shown = yaml.safe_load(snippet)
    cfg = validate({**base_config(tmp_path), **shown}, Plugins.load(shown["plugins"]))
    for key, value in shown.items():
        if key == "diffusion":
            assert {k: getattr(cfg.diffusion, k) for k in value} == value
        else:
            assert getattr(cfg, key) == value


def test_first_snippet_lists_every_key_with_its_default(tmp_path: Path) -> None:
    from lathe_diffusion.config import DiffusionSection

    block = yaml.safe_load(_yaml_blocks()[0])["diffusion"]
    assert set(block) | {"mask_token_id"} == set(DiffusionSection.model_fields)  # the id is the alternative
    text = DOC.read_text(encoding="utf-8")
    assert all(f"| `{key}` |" in text for key in DiffusionSection.model_fields)  # and the table has them all
    defaults = DiffusionSection().model_dump()
    mask_keys = ("mask_token_str", "mask_token_id")
    assert {k: v for k, v in block.items() if k not in mask_keys} == {k: v for k, v in defaults.items() if k not in mask_keys}
    assert DiffusionSection().mask_token == block["mask_token_str"]  # the default mask token


@pytest.mark.parametrize(
    ("block", "needle"),
    [({"min_mask_ratio": 0.8, "max_mask_ratio": 0.2}, "min_mask_ratio"),
     ({"mask_token_str": "<m>", "mask_token_id": 5}, "not both"),
     ({"noise_schedule": "square"}, "noise_schedule")],
)
def test_bad_settings_name_the_key(block: dict, needle: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=needle):
        validate({**base_config(tmp_path), "plugins": ["diffusion"], "diffusion": block}, Plugins.load(["diffusion"]))


def test_flash_attention_is_refused(tmp_path: Path) -> None:
    data = {**base_config(tmp_path), "plugins": ["diffusion"], "attn_implementation": "flash_attention_2"}
    with pytest.raises(ConfigError, match="attn_implementation: flash_attention_2"):
        validate(data, Plugins.load(["diffusion"]))
