"""QLoRA and 8-bit LoRA with a bitsandbytes optimizer: real runs wherever bitsandbytes is installed
(it quantizes and trains on CPU as well as on CUDA), and a clear error naming the extra where not.
Every bitsandbytes optimizer steps a tiny model in ``test_optimizers.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from lathe.config import validate
from lathe.config.load import ConfigError
from lathe.errors import LatheError
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe.train.optimizers import require_package

HAS_BNB = True
try:
    import bitsandbytes  # noqa: F401
except ImportError:
    HAS_BNB = False
needs_bnb = pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is an optional extra: pip install 'lathe[bnb]'")


def test_without_bitsandbytes_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lathe.models.loading import quantization_config

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if it were not installed
    cfg = validate(base_config(tmp_path, adapter="qlora", load_in_4bit=True), Plugins())
    with pytest.raises(LatheError, match=r"load_in_4bit: true needs the bitsandbytes package: pip install 'lathe\[bnb\]'"):
        quantization_config(cfg)
    with pytest.raises(LatheError, match=r"optimizer: adamw_bnb_8bit needs the bitsandbytes package: pip install 'lathe\[bnb\]'"):
        require_package("adamw_bnb_8bit")


def test_quantized_weights_need_an_adapter(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="load_in_4bit/load_in_8bit need adapter"):
        validate(base_config(tmp_path, load_in_8bit=True), Plugins())


@needs_bnb
@pytest.mark.parametrize(
    ("adapter", "bits", "optimizer"),
    [("qlora", "load_in_4bit", "adamw_bnb_8bit"), ("lora", "load_in_8bit", "paged_adamw_8bit")],
)
def test_quantized_lora_trains_and_merges(tmp_path: Path, adapter: str, bits: str, optimizer: str) -> None:
    import bitsandbytes as bnb

    from lathe.infer import merge_lora

    overrides = dict(adapter=adapter, lora_target_linear=True, lora_r=4, lora_alpha=8, max_steps=3,
                     learning_rate=1e-2, optimizer=optimizer, **{bits: True})
    result = run_training(base_config(tmp_path, **overrides))
    model = result.trainer.model
    layer = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer
    assert isinstance(layer, bnb.nn.Linear4bit if bits == "load_in_4bit" else bnb.nn.Linear8bitLt)
    assert type(result.trainer.optimizer.optimizer).__module__.startswith("bitsandbytes")
    assert len(result.losses) == 3 and all(torch.isfinite(torch.tensor(result.losses)))
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n), "the adapter did not train"

    cfg = validate(base_config(tmp_path, **overrides), Plugins())
    merged_dir = merge_lora(cfg, Plugins())
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "model-llama")
    base.resize_token_embeddings(len(AutoTokenizer.from_pretrained(merged_dir)))
    reference = PeftModel.from_pretrained(base, cfg.output_dir)
    ids = torch.tensor([[5, 9, 17, 33, 2, 8]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, reference(ids).logits, rtol=1e-4, atol=1e-5)
