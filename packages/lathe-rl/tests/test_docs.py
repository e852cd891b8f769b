"""docs/plugins/rl.md: its snippets validate, and it describes every key the plugin adds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lathe.config import validate
from lathe.plugins import Plugins
from lathe.testing import base_config
from lathe.testing.conformance import yaml_blocks
from lathe_rl.config import RLConfig, TRLSection

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "rl.md"


@pytest.mark.parametrize("snippet", yaml_blocks(DOC))
def test_documented_snippet_validates(snippet: str, tmp_path: Path) -> None:
    shown = yaml.safe_load(snippet)
    cfg = validate({**base_config(tmp_path), **shown}, Plugins.load(["rl"]))
    for key, value in shown.items():
        if key not in ("datasets", "base_model") and not isinstance(value, dict):
            assert getattr(cfg, key) == value


def test_every_key_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    keys = [*RLConfig.model_fields, *(f"trl.{k}" for k in TRLSection.model_fields)]
    assert [k for k in keys if f"`{k}`" not in text] == []
