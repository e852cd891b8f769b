"""quantize_moe_experts: the fused experts of every tiny MoE family in bitsandbytes' 4-bit format.

The exact checks compare against the same model whose experts hold the dequantized weights (the
forward and the input gradients must agree to float precision); the quantization error itself is
checked against the unquantized experts.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lathe.config.load import ConfigError
from lathe.errors import LatheError
from lathe.models.loading import build_model, model_config
from lathe.models.moe import QuantizedExperts, resident_bytes
from lathe.testing import base_config, run_training
from lathe.testing.models import MOE_ARCHS
from tests.train.conftest import make_cfg

pytest.importorskip("bitsandbytes", reason="bitsandbytes is the core extra lathe[bnb]")

QLORA = dict(adapter="qlora", load_in_4bit=True, lora_r=4, lora_alpha=8, lora_target_modules=["q_proj", "v_proj"])


def _experts(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m.mlp.experts for m in model.model.layers]


def _expected_bytes(experts: torch.nn.Module) -> int:
    """NF4 with double quantization: n/2 packed bytes, one uint8 absmax per 64 weights, one float32
    absmax per 256 of those, one float32 offset, for each expert's two matrices."""
    total = 0
    for proj in ("gate_up_proj", "down_proj"):
        n = experts.shapes[proj].numel()
        blocks = math.ceil(n / 64)
        total += experts.num_experts * (n // 2 + blocks + 4 * math.ceil(blocks / 256) + 4)
    return total


@pytest.mark.parametrize("arch", MOE_ARCHS)
def test_quantized_experts_compute_the_dequantized_eager_experts(tmp_path: Path, arch: str) -> None:
    cfg = make_cfg(tmp_path, arch=arch, **QLORA, quantize_moe_experts=True)
    quantized = build_model(cfg, model_config(cfg))
    plain_cfg = cfg.model_copy(update={"quantize_moe_experts": False})
    plain = build_model(plain_cfg, model_config(plain_cfg))  # same 4-bit linears, experts unquantized
    plain.set_experts_implementation("eager")
    experts = _experts(quantized)
    assert all(isinstance(m, QuantizedExperts) for m in experts)
    assert not any(p.dim() == 3 for p in quantized.parameters()), "a fused expert tensor stayed unquantized"

    # resident bytes: the exact 4-bit layout, 7.7x smaller than float32 experts
    original = sum(resident_bytes(m) for m in _experts(plain))
    stored = sum(resident_bytes(m) for m in experts)
    assert stored == sum(_expected_bytes(m) for m in experts)
    assert original / stored > 7.5

    ids = torch.randint(3, 200, (2, 16), generator=torch.Generator().manual_seed(0))
    reference_out = plain(ids).logits.detach()
    embeds = quantized.get_input_embeddings()(ids).detach().requires_grad_()
    out = quantized(inputs_embeds=embeds).logits
    error = (out - reference_out).norm() / reference_out.norm()
    assert 0 < error < 0.1, f"4-bit experts moved the logits by {error:.3f} (relative)"

    with torch.no_grad():  # the plain model's experts take the dequantized weights
        for q, p in zip(experts, _experts(plain), strict=True):
            for proj in ("gate_up_proj", "down_proj"):
                getattr(p, proj).copy_(torch.stack([q.weight(proj, e, torch.float32) for e in range(q.num_experts)]))
    embeds_ref = plain.get_input_embeddings()(ids).detach().requires_grad_()
    out_ref = plain(inputs_embeds=embeds_ref).logits
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    out.backward(grad)
    out_ref.backward(grad)
    torch.testing.assert_close(embeds.grad, embeds_ref.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("arch", ["qwen3_moe", "mixtral"])
def test_qlora_trains_with_quantized_experts(tmp_path: Path, arch: str) -> None:
    result = run_training(base_config(tmp_path, arch=arch, **QLORA, quantize_moe_experts=True, max_steps=2,
                                      learning_rate=1e-2))
    model = result.trainer.model
    experts = _experts(model.base_model.model)
    assert all(isinstance(m, QuantizedExperts) for m in experts)
    assert len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n), "the adapter did not train"
    fresh_cfg = make_cfg(tmp_path, arch=arch, **QLORA, quantize_moe_experts=True)
    fresh = _experts(build_model(fresh_cfg, model_config(fresh_cfg)))
    for trained, untouched in zip(experts, fresh, strict=True):  # frozen: the 4-bit experts are bit for bit as loaded
        for name, buffer in untouched.state_dict().items():
            assert torch.equal(trained.state_dict()[name].cpu(), buffer.cpu()), name


def test_quantize_moe_experts_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="quantize_moe_experts needs load_in_4bit: true"):
        make_cfg(tmp_path, adapter="lora", load_in_8bit=True, quantize_moe_experts=True)
    with pytest.raises(ConfigError, match="LoRA on quantized experts is not available"):
        make_cfg(tmp_path, **QLORA, quantize_moe_experts=True, lora_target_parameters=["mlp.experts.gate_up_proj"])
    cfg = make_cfg(tmp_path, **QLORA, quantize_moe_experts=True)  # the tiny llama: no experts
    with pytest.raises(LatheError, match="quantize_moe_experts: model_type 'llama' is not a MoE architecture"):
        build_model(cfg, model_config(cfg))
