"""LoRA on a sparse model: the update is masked like the weight, so training, inference and
the merged (compressed) model compute the same function and the merged zeros are exact."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import PROJ, sparse_config
from safetensors.torch import load_file

from lathe.config import validate
from lathe.infer import merge_lora
from lathe.plugins import Plugins
from lathe.testing import run_training
from lathe_llmcompressor.compress import load_compressed


def test_lora_merge_keeps_the_zeros_and_the_function(tmp_path: Path) -> None:
    cfg = sparse_config(tmp_path, adapter="lora", lora_target_linear=True, lora_r=4)
    cfg["llmcompressor"] = {**cfg["llmcompressor"], "save_compressed": True}
    result = run_training(cfg)
    peft_model = result.trainer.model.eval()

    # the trained update itself is dense where the weight is zero: masking is what keeps the zeros
    layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    raw = layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    base_zeros = layer.base_layer.weight == 0
    assert torch.any(raw[base_zeros] != 0)

    plugins = Plugins.load(cfg["plugins"])
    merged_dir = merge_lora(validate(cfg, plugins), plugins)
    merged = load_compressed(merged_dir)  # written in the compressed-tensors format
    base = load_file(str(Path(cfg["base_model"]) / "model.safetensors"))
    state = merged.state_dict()
    for name, weight in base.items():
        if any(p in name for p in PROJ):
            assert torch.equal(state[name] == 0, weight == 0), f"{name}: merged zeros differ from the base's"

    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, peft_model(ids).logits, rtol=1e-4, atol=1e-5)
