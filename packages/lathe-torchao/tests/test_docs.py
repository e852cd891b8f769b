"""Every YAML snippet of docs/plugins/torchao.md validates and trains a step, and every key is in its tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lathe.testing import base_config, run_training
from lathe.testing.conformance import yaml_blocks

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "torchao.md"


@pytest.mark.parametrize("snippet", yaml_blocks(DOC))
def test_documented_snippet_validates_and_trains(snippet: str, tmp_path: Path) -> None:
    shown = yaml.safe_load(snippet)
    result = run_training({**base_config(tmp_path, max_steps=1), **shown})
    assert result.losses and result.losses[0] > 0


def test_every_key_is_in_the_tables() -> None:
    from lathe_torchao.config import QATBlock, TorchaoConfig

    text = DOC.read_text(encoding="utf-8")
    assert len(yaml_blocks(DOC)) == 3
    assert all(f"| `{key}` |" in text for key in [*TorchaoConfig.model_fields, *QATBlock.model_fields])
