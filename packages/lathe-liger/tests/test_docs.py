"""The snippets of docs/plugins/liger.md validate; training with them reaches the kernels
(CUDA) or stops at model load with the clear error (no CUDA); every key is in the table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from lathe.config import validate
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe.testing.conformance import yaml_blocks

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "liger.md"


@pytest.mark.parametrize("snippet", yaml_blocks(DOC))
def test_documented_snippet_validates(snippet: str, tmp_path: Path) -> None:
    shown = yaml.safe_load(snippet)
    cfg = validate({**base_config(tmp_path), **shown}, Plugins.load(shown["plugins"]))
    for key, value in shown.items():
        if key != "plugins":
            assert getattr(cfg, key) == value


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the snippet trains (bench/gpu.py G3)")
@pytest.mark.parametrize("snippet", yaml_blocks(DOC))
def test_documented_snippet_stops_at_model_load_without_cuda(snippet: str, tmp_path: Path, tiny_model_dir: Path) -> None:
    shown = yaml.safe_load(snippet)
    with pytest.raises(LatheError, match="need a CUDA GPU; none is available"):
        run_training({**base_config(tmp_path, base_model=str(tiny_model_dir), max_steps=1), **shown})
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_every_key_is_in_the_table() -> None:
    from lathe_liger.config import LigerConfig

    text = DOC.read_text(encoding="utf-8")
    assert all(f"| `{key}` |" in text for key in LigerConfig.model_fields)
