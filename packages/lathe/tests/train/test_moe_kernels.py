"""experts_implementation, use_scattermoe, use_sonicmoe, use_kernels and LoRA on fused experts.

The grouped expert path (transformers' grouped_mm, what ``use_scattermoe`` gets here) must equal the
eager per-expert loop in forward and gradients, with and without LoRA on the expert weights
(``lora_target_parameters``), on every tiny MoE family.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from lathe.config.load import ConfigError
from lathe.errors import LatheError
from lathe.models.loading import load_model
from lathe.plugins import Plugins
from lathe.testing import tiny_tokenizer
from lathe.testing.models import MOE_ARCHS
from tests.train.conftest import make_cfg

EXPERT_LORA = dict(adapter="lora", lora_r=4, lora_alpha=8, peft_init_lora_weights=False, lora_target_modules=[],
                   lora_target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"])


def _run(tmp_path: Path, arch: str, **overrides: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], Any]:
    cfg = make_cfg(tmp_path, arch=arch, seed=0, **overrides)
    torch.manual_seed(0)  # the same LoRA initialisation for both implementations
    model = load_model(cfg, tiny_tokenizer(), Plugins())
    ids = torch.randint(3, 200, (2, 16), generator=torch.Generator().manual_seed(0))
    logits = model(input_ids=ids).logits
    logits.backward(torch.randn(logits.shape, generator=torch.Generator().manual_seed(1)))
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return logits.detach(), grads, model


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora-on-experts"])
@pytest.mark.parametrize("arch", MOE_ARCHS)
def test_grouped_experts_equal_eager(tmp_path: Path, arch: str, lora: bool, capsys: pytest.CaptureFixture[str]) -> None:
    extra = EXPERT_LORA if lora else {}
    eager, eager_grads, eager_model = _run(tmp_path, arch, experts_implementation="eager", **extra)
    grouped, grouped_grads, grouped_model = _run(tmp_path, arch, use_scattermoe=True, **extra)
    assert "use_scattermoe: ScatterMoE's kernels are not integrated in lathe; transformers' grouped_mm" in capsys.readouterr().err
    assert eager_model.config._experts_implementation == "eager"
    assert grouped_model.config._experts_implementation == "grouped_mm"
    torch.testing.assert_close(grouped, eager, rtol=1e-5, atol=1e-5)
    expert_grads = [n for n in eager_grads if ("lora_" in n) == lora and "experts" in n]
    assert expert_grads, "no gradient reached the experts"
    assert eager_grads.keys() == grouped_grads.keys()
    for name, grad in eager_grads.items():  # float32 summation order differs: compare relative to the norm
        assert (grouped_grads[name] - grad).norm() <= 1e-5 * grad.norm(), name


def test_sonicmoe_without_its_kernel_is_served_by_grouped_mm(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kernels", None)  # as where the kernels package is not installed
    _, _, model = _run(tmp_path, "qwen3_moe", use_sonicmoe=True)
    assert model.config._experts_implementation == "grouped_mm"
    err = capsys.readouterr().err
    assert "use_sonicmoe: SonicMoE is not available here" in err and "transformers' grouped_mm experts serve it" in err


def test_grouped_mm_on_an_old_gpu_is_an_error_not_a_slow_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from lathe.models.moe_kernels import require_grouped_mm

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: (7, 5))
    with pytest.raises(LatheError, match="use_scattermoe: the grouped expert matmul needs a GPU of compute capability 8.0"):
        require_grouped_mm("use_scattermoe")


def test_experts_keys_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="set use_scattermoe or use_sonicmoe, not both"):
        make_cfg(tmp_path, use_scattermoe=True, use_sonicmoe=True)
    with pytest.raises(ConfigError, match="experts_implementation: scattermoe needs use_scattermoe: true"):
        make_cfg(tmp_path, experts_implementation="scattermoe")
    with pytest.raises(ConfigError, match="experts_implementation: eager contradicts use_sonicmoe: true"):
        make_cfg(tmp_path, experts_implementation="eager", use_sonicmoe=True)
    with pytest.raises(ConfigError, match="with quantize_moe_experts the 4-bit experts run lathe's own"):
        make_cfg(tmp_path, adapter="qlora", load_in_4bit=True, quantize_moe_experts=True, experts_implementation="eager")
    with pytest.raises(LatheError, match="experts_implementation: LlamaForCausalLM has no fused MoE experts"):
        _run(tmp_path, "llama", experts_implementation="eager")
    monkeypatch.setitem(sys.modules, "kernels", None)
    with pytest.raises(LatheError, match=r"use_kernels: true needs the kernels package: pip install 'lathe\[kernels\]'"):
        _run(tmp_path, "llama", use_kernels=True)


def test_axolotl_kernels_plugin_line_is_served_by_core(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lathe.testing import base_config, run_training

    cfg = base_config(tmp_path, arch="olmoe", plugins=["axolotl.integrations.kernels.KernelsPlugin"],
                      use_scattermoe=True, max_steps=1)
    result = run_training(cfg)
    assert result.trainer.model.config._experts_implementation == "grouped_mm"
    assert "axolotl.integrations.kernels.KernelsPlugin needs no plugin in lathe" in capsys.readouterr().err
