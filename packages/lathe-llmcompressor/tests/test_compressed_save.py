"""save_compressed: compressed-tensors' sparse format, reloaded to identical weights, smaller on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import sparse_config

from lathe.testing import run_training
from lathe_llmcompressor.compress import load_compressed


@pytest.mark.parametrize(("structure", "fmt"), [("unstructured", "sparse-bitmask"), ("2:4", "sparse-24-bitmask")])
def test_compressed_save_reloads_identical_and_smaller(structure: str, fmt: str, tmp_path: Path) -> None:
    cfg = sparse_config(tmp_path, structure, llmcompressor={"recipe": sparse_config(tmp_path)["llmcompressor"]["recipe"],
                                                             "save_compressed": True})
    result = run_training(cfg)
    out = Path(cfg["output_dir"])
    qcfg = json.loads((out / "config.json").read_text())["quantization_config"]
    assert qcfg["quant_method"] == "compressed-tensors"
    assert qcfg["sparsity_config"]["format"] == fmt
    assert qcfg["sparsity_config"]["global_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert len(qcfg["sparsity_config"]["targets"]) == 14  # 7 projections x 2 layers

    trained = result.trainer.model.state_dict()
    reloaded = load_compressed(out).state_dict()
    assert trained.keys() == reloaded.keys()
    for name, value in trained.items():
        assert torch.equal(reloaded[name], value), name

    dense = Path(cfg["base_model"]) / "model.safetensors"
    assert (out / "model.safetensors").stat().st_size < dense.stat().st_size


def test_compressed_folder_layout(tmp_path: Path) -> None:
    """The compressed folder is what vLLM / llmcompressor read; its config names every compressed module."""
    cfg = sparse_config(tmp_path, llmcompressor={"recipe": sparse_config(tmp_path)["llmcompressor"]["recipe"],
                                                 "save_compressed": True})
    run_training(cfg)
    from safetensors import safe_open

    with safe_open(str(Path(cfg["output_dir"]) / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "model.layers.0.self_attn.q_proj.bitmask" in keys
    assert "model.layers.0.self_attn.q_proj.weight" not in keys
    assert "model.embed_tokens.weight" in keys  # untargeted weights stay dense
