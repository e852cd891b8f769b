"""Spectrum inside a real (tiny) training run."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lathe.config import ConfigError, validate
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training


def test_frozen_weights_unchanged_and_kept_ones_trained(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, plugins=["spectrum"], spectrum_top_fraction=0.5,
                      spectrum_snr_dir=str(tmp_path / "snr"), max_steps=3, dataset_processes=1)
    before = load_file(Path(cfg["base_model"]) / "model.safetensors")
    result = run_training(cfg)
    model = result.trainer.model
    after = {n: p.detach() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}

    kept_layers = {n for n in trainable if n.startswith("model.layers.")}
    # 2 layers × 7 matrix types, top half of each type: one layer of each type trains
    assert len(kept_layers) == 7
    assert {n.split(".", 3)[3] for n in kept_layers} == {
        "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
        "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
    }
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= trainable
    for name, weight in after.items():
        if name in trainable:
            assert not torch.equal(weight, before[name]), f"{name} should have trained"
        else:
            assert torch.equal(weight, before[name]), f"{name} is frozen but changed"
    # the scan was cached: one results file naming every weight matrix, the kept ones included
    (results,) = (tmp_path / "snr").glob("snr_results_*.json")
    layers = json.loads(results.read_text())["layers"]
    assert len(layers) == 14 and {n.removesuffix(".weight") for n in kept_layers} <= set(layers)


def test_adapter_with_spectrum_is_refused(tmp_path: Path) -> None:
    cfg = base_config(tmp_path, plugins=["spectrum"], adapter="lora")
    with pytest.raises(ConfigError, match="spectrum chooses which full weights to train .* adapter: lora"):
        validate(cfg, Plugins.load(["spectrum"]))
