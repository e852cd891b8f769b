"""The fused LoRA kernels compute what peft computes (outputs and every gradient, several ranks,
dense and 4-bit bases), save less for backward, and refuse what they cannot serve by key."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model

from lathe.config import validate
from lathe.config.load import ConfigError
from lathe.errors import LatheError
from lathe.models.lora_kernels import LoraMLPFunction, apply_lora_kernels
from lathe.plugins import Plugins
from lathe.testing import base_config, run_training
from lathe.testing.models import tiny_model

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
KERNELS = dict(lora_mlp_kernel=True, lora_qkv_kernel=True, lora_o_kernel=True)


def _peft(model: torch.nn.Module, r: int, targets: list[str] = ALL, **extra: Any) -> Any:
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets, lora_dropout=0.0, **extra))
    torch.manual_seed(1)
    with torch.no_grad():  # peft starts B at zero: make every LoRA path carry signal
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    return peft_model


def _grads(model: Any, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _compare(reference: Any, fused: Any, ids: torch.Tensor) -> None:
    loss_ref, grads_ref = _grads(reference, ids)
    loss, grads = _grads(fused, ids)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-5, atol=1e-5)
    assert grads.keys() == grads_ref.keys() and grads
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(("arch", "r", "targets"), [("llama", 1, ALL), ("llama", 8, ALL), ("qwen2", 4, ALL),
                                                      ("llama", 4, ["q_proj", "v_proj", "up_proj"])])
def test_kernels_equal_peft_outputs_and_gradients(arch: str, r: int, targets: list[str]) -> None:
    reference = _peft(tiny_model(arch), r, targets)  # qwen2: biased q/k/v base layers
    fused = copy.deepcopy(reference)
    assert apply_lora_kernels(SimpleNamespace(**KERNELS), fused) == list(KERNELS)
    assert "forward" in vars(fused.base_model.model.model.layers[0].mlp)
    ids = torch.tensor([[3, 17, 250, 9, 41, 7, 100, 2, 55]])
    _compare(reference, fused, ids)


def test_rslora_scaling_is_read_from_the_adapter() -> None:
    reference = _peft(tiny_model(), 4, use_rslora=True)
    fused = copy.deepcopy(reference)
    apply_lora_kernels(SimpleNamespace(**KERNELS), fused)
    _compare(reference, fused, torch.tensor([[5, 6, 7, 8, 9]]))


def _saved_bytes(fn: Any) -> int:
    sizes: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter):
            sizes[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(sizes.values())


def test_the_mlp_kernel_saves_less_for_backward_than_peft() -> None:
    reference = _peft(tiny_model(), 4)
    fused = copy.deepcopy(reference)
    apply_lora_kernels(SimpleNamespace(lora_mlp_kernel=True, lora_qkv_kernel=False, lora_o_kernel=False), fused)
    x = torch.randn(2, 64, 64, requires_grad=True)
    theirs = _saved_bytes(lambda: reference.base_model.model.model.layers[0].mlp(x))
    ours = _saved_bytes(lambda: fused.base_model.model.model.layers[0].mlp(x))
    intermediate = 2 * 64 * 128 * 4  # one batch × length × intermediate_size float32 tensor
    assert ours == x.nbytes + 2 * intermediate  # x, gate and up: nothing else
    assert theirs >= x.nbytes + 4 * intermediate  # peft: gate, up, act(gate) and act(gate)·up at least


def test_disabled_adapters_give_the_base_output() -> None:
    reference = _peft(tiny_model(), 4)
    fused = copy.deepcopy(reference)
    apply_lora_kernels(SimpleNamespace(**KERNELS), fused)
    ids = torch.tensor([[4, 5, 6]])
    with torch.no_grad(), fused.disable_adapter(), reference.disable_adapter():
        torch.testing.assert_close(fused(input_ids=ids).logits, reference(input_ids=ids).logits)
        assert not torch.allclose(fused(input_ids=ids).logits, fused.base_model.model.lm_head(torch.zeros(1, 3, 64)))


def test_the_mlp_function_recomputes_any_activation() -> None:
    from lathe.models.lora_kernels import Projection

    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    params = [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in [(3, 8), (16, 3)] * 2 + [(3, 16), (8, 3)]]
    ps = [Projection(torch.randn(o, i, dtype=torch.float64), None, a, b, 0.5)
          for (o, i), a, b in [((16, 8), params[0], params[1]), ((16, 8), params[2], params[3]), ((8, 16), params[4], params[5])]]
    for act in (torch.nn.functional.silu, torch.nn.functional.gelu):
        assert torch.autograd.gradcheck(lambda x, *lora, act=act: LoraMLPFunction.apply(x, act, *ps, *lora), (x, *params))


def test_qlora_4bit_base_matches_peft(tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is an optional extra: pip install 'lathe[bnb]'")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from lathe.testing.models import write_tiny_model

    folder = write_tiny_model(tmp_path / "m")
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, device_map={"": "cpu"}, dtype=torch.float32)
    reference = _peft(base, 4).train()  # in eval mode without grad, bitsandbytes takes a bf16 CPU path
    fused = copy.deepcopy(reference)
    apply_lora_kernels(SimpleNamespace(**KERNELS), fused)
    assert hasattr(fused.base_model.model.model.layers[0].mlp.gate_proj.base_layer.weight, "quant_state")
    _compare(reference, fused, torch.tensor([[3, 17, 250, 9, 41, 7]]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(lora_dropout=0.05), "need lora_dropout: 0"),
        (dict(peft_use_dora=True), "do not support peft_use_dora"),
        (dict(adapter=None, lora_target_linear=None), "need adapter: lora or qlora"),
        (dict(load_in_8bit=True), "not available with load_in_8bit"),
        (dict(lora_fan_in_fan_out=True), "do not support lora_fan_in_fan_out"),
    ],
)
def test_configurations_the_kernels_cannot_serve_are_refused(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    raw = base_config(tmp_path, **{"adapter": "lora", "lora_target_linear": True, "lora_mlp_kernel": True, **overrides})
    with pytest.raises(ConfigError, match=message) as info:
        validate(raw, Plugins())
    assert "lora_mlp_kernel" in str(info.value)


def test_an_unrecognised_layout_is_an_error_naming_the_key() -> None:
    from transformers import PhiConfig, PhiForCausalLM

    config = PhiConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    model = get_peft_model(PhiForCausalLM(config), LoraConfig(r=2, target_modules=["fc1", "q_proj", "dense"]))
    with pytest.raises(LatheError, match=r"lora_mlp_kernel: PhiForCausalLM has no gated MLP \(gate_proj, up_proj"):
        apply_lora_kernels(SimpleNamespace(lora_mlp_kernel=True, lora_qkv_kernel=False, lora_o_kernel=False), model)
    with pytest.raises(LatheError, match="lora_o_kernel: PhiForCausalLM's attention has no o_proj projections"):
        apply_lora_kernels(SimpleNamespace(lora_mlp_kernel=False, lora_qkv_kernel=False, lora_o_kernel=True), model)


def test_a_key_without_lora_on_its_projections_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    model = _peft(tiny_model(), 2, ["q_proj"])
    apply_lora_kernels(SimpleNamespace(**KERNELS), model)
    err = capsys.readouterr().err
    assert "lora_mlp_kernel: no gate_proj/up_proj/down_proj projection carries a LoRA adapter" in err
    assert "lora_o_kernel: no o_proj projection carries a LoRA adapter" in err
    assert "forward" not in vars(model.base_model.model.model.layers[0].mlp)
    assert "forward" in vars(model.base_model.model.model.layers[0].self_attn.q_proj)


def test_a_run_with_the_kernels_and_tiled_mlp_trains_like_plain_lora(tmp_path: Path) -> None:
    common = dict(adapter="lora", lora_target_linear=True, lora_r=4, max_steps=2, learning_rate=1e-2)
    plain = run_training(base_config(tmp_path, **common, output_dir=str(tmp_path / "plain")))
    fused = run_training(base_config(tmp_path, **common, **KERNELS, tiled_mlp=True, tiled_mlp_num_shards=3,
                                     gradient_checkpointing=True))
    layer = fused.trainer.model.get_base_model().model.layers[0]
    assert "forward" in vars(layer.mlp) and "forward" in vars(layer.self_attn.o_proj)
    assert len(plain.losses) == 2 and fused.losses == pytest.approx(plain.losses, rel=1e-4)
