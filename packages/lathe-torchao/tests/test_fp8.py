"""FP8 training: the supported linear layers train in float8, the loss follows the high-precision
run, and layers torchao cannot take are listed and left alone."""

from __future__ import annotations

import types
from pathlib import Path

import torch

from lathe.testing import base_config, run_training, tiny_model, tiny_tokenizer
from lathe_torchao.fp8 import convert_to_float8, float8_config

STEPS = 6


def test_fp8_loss_follows_the_bf16_run(tmp_path: Path) -> None:
    runs = {}
    for fp8 in (False, True):
        cfg = base_config(tmp_path, max_steps=STEPS, bf16=True, output_dir=str(tmp_path / f"fp8-{fp8}"),
                          **({"fp8": True} if fp8 else {}))
        runs[fp8] = run_training(cfg)
    kinds = {type(m).__name__ for m in runs[True].trainer.model.modules()}
    assert "Float8Linear" in kinds
    plain, fp8 = runs[False].losses, runs[True].losses
    assert len(plain) == len(fp8) == STEPS
    assert plain != fp8  # float8 matmuls really ran
    for step, (a, b) in enumerate(zip(plain, fp8, strict=True), start=1):
        assert abs(a - b) <= 0.02 * a, f"step {step}: bf16 {a}, fp8 {b}"


def test_layers_torchao_cannot_take_stay_high_precision_and_are_listed(capsys) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model("llama", tiny_tokenizer(), intermediate_size=72)  # 72 is not a multiple of 16
    cfg = types.SimpleNamespace(fp8_config=None, fp8_enable_fsdp_float8_all_gather=False)
    skipped = convert_to_float8(model, cfg)
    assert sorted(skipped) == sorted(
        f"model.layers.{i}.mlp.{name} ({dims} is not a multiple of 16)"
        for i in range(2) for name, dims in (("gate_proj", "64x72"), ("up_proj", "64x72"), ("down_proj", "72x64"))
    )
    assert type(model.model.layers[0].mlp.up_proj) is torch.nn.Linear
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Float8Linear"
    assert "fp8 leaves 6 linear layers in high precision" in capsys.readouterr().err


def test_recipe_and_fsdp_all_gather_reach_torchao_config() -> None:
    from torchao.float8.config import ScalingGranularity

    def cfg(recipe: str | None, all_gather: bool = False) -> types.SimpleNamespace:
        block = types.SimpleNamespace(recipe=recipe) if recipe else None
        return types.SimpleNamespace(fp8_config=block, fp8_enable_fsdp_float8_all_gather=all_gather)

    tensorwise = float8_config(cfg(None, all_gather=True))
    assert tensorwise.enable_fsdp_float8_all_gather
    assert tensorwise.cast_config_weight.scaling_granularity is ScalingGranularity.TENSORWISE
    rowwise = float8_config(cfg("rowwise"))
    assert not rowwise.enable_fsdp_float8_all_gather
    assert rowwise.cast_config_weight.scaling_granularity is ScalingGranularity.AXISWISE
