"""Exactly the expected modules and functions are swapped per model type (CUDA availability
faked: no Triton kernel runs), nothing else, and everything is put back after the run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from lathe.errors import LatheError
from lathe_liger import plugin
from lathe_liger.patches import PatchSet, _snapshot, apply

LLAMA = "transformers.models.llama.modeling_llama"


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def _apply_and_undo(model_type: str, keys: list[str]) -> list[str]:
    before = _snapshot()
    patches = apply(model_type, keys)
    try:
        return patches.swapped()
    finally:
        patches.undo()
        after = _snapshot()
        changed = [k for k, v in before.items() if after.get(k, v) is not v]
        assert not changed, f"not undone: {changed[:5]}"


@pytest.mark.parametrize(
    ("model_type", "keys", "expected"),
    [
        ("llama", ["liger_rope", "liger_rms_norm", "liger_glu_activation"],
         [f"{LLAMA}.LlamaMLP", f"{LLAMA}.LlamaRMSNorm", f"{LLAMA}.apply_rotary_pos_emb"]),
        ("llama", ["liger_rms_norm"], [f"{LLAMA}.LlamaRMSNorm"]),
        ("qwen2", ["liger_glu_activation"], ["transformers.models.qwen2.modeling_qwen2.Qwen2MLP"]),
        ("gemma", ["liger_glu_activation"], ["transformers.models.gemma.modeling_gemma.GemmaMLP"]),  # GeGLU
        ("granitemoe", ["liger_rms_norm", "liger_rope"],  # lathe's own swap: not in liger's table
         ["transformers.models.granitemoe.modeling_granitemoe.GraniteMoeRMSNorm",
          "transformers.models.granitemoe.modeling_granitemoe.apply_rotary_pos_emb"]),
    ],
)
def test_exactly_the_expected_names_are_swapped_and_restored(model_type: str, keys: list[str], expected: list[str]) -> None:
    swapped = _apply_and_undo(model_type, keys)
    assert swapped == expected
    assert torch.nn.functional.cross_entropy.__module__ == "torch.nn.functional"  # the loss is never patched


def test_the_model_is_built_from_liger_modules_and_the_forward_is_lathes() -> None:
    from liger_kernel.transformers.rms_norm import LigerRMSNorm
    from liger_kernel.transformers.swiglu import LigerSwiGLUMLP
    from transformers import LlamaForCausalLM

    from lathe.testing.models import tiny_model_config

    forward = LlamaForCausalLM.forward
    patches = apply("llama", ["liger_rms_norm", "liger_glu_activation"])
    try:
        model = LlamaForCausalLM(tiny_model_config("llama"))  # builds; nothing runs a kernel
        assert isinstance(model.model.norm, LigerRMSNorm)
        assert isinstance(model.model.layers[0].mlp, LigerSwiGLUMLP)
        assert LlamaForCausalLM.forward is forward  # the fused loss goes through lathe's hook, not liger's forward
    finally:
        patches.undo()
    assert not isinstance(LlamaForCausalLM(tiny_model_config("llama")).model.norm, LigerRMSNorm)


@pytest.mark.parametrize(("model_type", "key"), [("gpt2", "liger_rope"), ("jamba", "liger_layer_norm")])
def test_a_type_liger_cannot_serve_is_an_error_naming_the_key(model_type: str, key: str) -> None:
    with pytest.raises(LatheError, match=rf"^{key}: liger-kernel has no kernels for model type '{model_type}'"):
        apply(model_type, [key])


def _cfg(tmp_path: Path, **keys: Any) -> Any:
    from lathe.config import validate
    from lathe.plugins import Plugins
    from lathe.testing import base_config

    return validate({**base_config(tmp_path), "plugins": ["liger"], **keys}, Plugins.load(["liger"]))


def test_the_plugin_patches_before_the_model_and_undoes_after(tmp_path: Path, fake_cuda: None) -> None:
    cfg = _cfg(tmp_path, liger_rms_norm=True, liger_rope=True)
    modeling = sys.modules.get(LLAMA) or __import__(LLAMA, fromlist=["x"])
    norm, rope = modeling.LlamaRMSNorm, modeling.apply_rotary_pos_emb
    plugin.lathe_pre_model_load(cfg)
    try:
        assert modeling.LlamaRMSNorm is not norm and modeling.apply_rotary_pos_emb is not rope
    finally:
        plugin.lathe_post_train_unload(cfg)
    assert modeling.LlamaRMSNorm is norm and modeling.apply_rotary_pos_emb is rope
    plugin.lathe_post_train_unload(cfg)  # a second unload (a failed run) is harmless


def test_kernel_impl_must_be_chosen_before_liger_is_imported(tmp_path: Path, fake_cuda: None) -> None:
    import liger_kernel.ops  # noqa: F401  (already imported by the tests above, as in a long process)

    cfg = _cfg(tmp_path, liger_rms_norm=True, liger_kernel_impl="cutile")
    with pytest.raises(LatheError, match="liger_kernel_impl: cutile must be chosen before"):
        plugin.lathe_pre_model_load(cfg)
    assert "LIGER_KERNEL_IMPL" not in __import__("os").environ


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_without_cuda_every_triton_key_is_an_error_at_model_load(tmp_path: Path) -> None:
    from lathe.testing import base_config, run_training

    cfg = {**base_config(tmp_path, max_steps=1), "plugins": ["liger"], "liger_rms_norm": True,
           "liger_fused_linear_cross_entropy": True}
    before = _snapshot()
    with pytest.raises(LatheError, match=r"^liger_rms_norm, liger_fused_linear_cross_entropy: Liger's kernels are "
                                         r"Triton kernels and need a CUDA GPU"):
        run_training(cfg)
    assert PatchSet().swapped() == [] and _snapshot() == before
