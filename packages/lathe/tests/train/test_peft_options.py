"""Axolotl's PEFT keys reach the LoRA adapter with PEFT's meaning."""

from __future__ import annotations

import pytest
import torch

from lathe.config.load import ConfigError
from lathe.models.loading import load_model
from lathe.testing import tiny_tokenizer
from tests.train.conftest import make_plugins


def _adapter(cfg_of, **overrides):  # type: ignore[no-untyped-def]
    cfg = cfg_of(adapter="lora", lora_r=4, lora_alpha=16, lora_target_modules=["q_proj", "v_proj"], **overrides)
    return load_model(cfg, tiny_tokenizer(), make_plugins())


def test_rank_and_alpha_patterns_and_layer_selection(cfg_of) -> None:  # type: ignore[no-untyped-def]
    model = _adapter(cfg_of, lora_rank_pattern={"q_proj": 2}, lora_alpha_pattern={"v_proj": 8},
                     peft_layers_to_transform=[0], peft_layers_pattern="layers")
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    v = model.base_model.model.model.layers[0].self_attn.v_proj
    assert q.lora_A["default"].weight.shape[0] == 2 and v.lora_A["default"].weight.shape[0] == 4
    assert q.scaling["default"] == 16 / 2 and v.scaling["default"] == 8 / 4
    assert not hasattr(model.base_model.model.model.layers[1].self_attn.q_proj, "lora_A")  # layer 0 only


def test_init_trainable_tokens_replication_and_dtype(cfg_of) -> None:  # type: ignore[no-untyped-def]
    default = _adapter(cfg_of)
    q = default.base_model.model.model.layers[0].self_attn.q_proj
    assert torch.count_nonzero(q.lora_B["default"].weight) == 0  # PEFT's default: B = 0
    random_b = _adapter(cfg_of, peft_init_lora_weights=False)
    q = random_b.base_model.model.model.layers[0].self_attn.q_proj
    assert torch.count_nonzero(q.lora_B["default"].weight) > 0
    tokens = _adapter(cfg_of, peft_trainable_token_indices=[5, 6])
    assert any("trainable_tokens" in n and p.requires_grad for n, p in tokens.named_parameters())
    replicated = _adapter(cfg_of, peft_layer_replication=[[0, 2], [1, 2]])
    assert len(replicated.base_model.model.model.layers) == 3
    bf16 = _adapter(cfg_of, bf16=True, peft_autocast_adapter_dtype=False)
    q = bf16.base_model.model.model.layers[0].self_attn.q_proj
    assert q.lora_A["default"].weight.dtype == torch.bfloat16
    q = _adapter(cfg_of, bf16=True).base_model.model.model.layers[0].self_attn.q_proj
    assert q.lora_A["default"].weight.dtype == torch.float32  # PEFT's default upcast


def test_adapter_shaping_keys_need_a_new_adapter(cfg_of, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="lora_rank_pattern need adapter: lora or qlora"):
        cfg_of(lora_rank_pattern={"q_proj": 2})
    with pytest.raises(ConfigError, match="with lora_model_dir the saved adapter_config.json decides them"):
        cfg_of(adapter="lora", lora_model_dir=str(tmp_path), peft_init_lora_weights="gaussian")


def test_lora_target_parameters(cfg_of) -> None:  # type: ignore[no-untyped-def]
    model = _adapter(cfg_of, lora_target_parameters=["mlp.up_proj.weight"])
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("mlp.up_proj" in n and "lora_" in n for n in names)
