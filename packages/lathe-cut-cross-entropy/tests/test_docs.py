"""Every YAML snippet of docs/plugins/cut_cross_entropy.md (the seed's Axolotl one included)
validates and trains, and every key is in the page's table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lathe.testing import base_config, run_training
from lathe.testing.conformance import yaml_blocks

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "cut_cross_entropy.md"


@pytest.mark.parametrize("snippet", yaml_blocks(DOC))
def test_documented_snippet_validates_and_trains(snippet: str, tmp_path: Path, tiny_model_dir: Path) -> None:
    shown = yaml.safe_load(snippet)
    result = run_training({**base_config(tmp_path, base_model=str(tiny_model_dir), max_steps=1), **shown})
    assert type(result.trainer.lathe_hidden_loss).__name__ == "CutCrossEntropyLoss"
    assert result.losses and result.losses[0] > 0


def test_every_key_is_in_the_table() -> None:
    from lathe_cut_cross_entropy.config import CutCrossEntropyConfig

    text = DOC.read_text(encoding="utf-8")
    assert len(yaml_blocks(DOC)) == 2
    assert all(f"| `{key}` |" in text for key in CutCrossEntropyConfig.model_fields)
