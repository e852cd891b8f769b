"""Training keeps every pruned weight exactly zero (unstructured and 2:4), also across a resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import PROJ, sparse_config
from safetensors.torch import load_file

from lathe.testing import run_training


def _targeted(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if any(p in k for p in PROJ)}


def _base_weights(cfg: dict) -> dict[str, torch.Tensor]:
    return _targeted(load_file(str(Path(cfg["base_model"]) / "model.safetensors")))


@pytest.mark.parametrize("structure", ["unstructured", "2:4"])
def test_fine_tuning_keeps_the_zero_mask(structure: str, tmp_path: Path) -> None:
    cfg = sparse_config(tmp_path, structure)
    before = _base_weights(cfg)
    run_training(cfg)
    after = _targeted(load_file(str(Path(cfg["output_dir"]) / "model.safetensors")))
    for name, weight in before.items():
        assert 0.49 <= float((weight == 0).float().mean()) <= 0.51
        assert torch.equal(after[name] == 0, weight == 0), f"{name}: the zero mask changed"
        assert not torch.equal(after[name], weight), f"{name} did not train"


def test_without_the_plugin_the_zeros_move(tmp_path: Path) -> None:
    """The setting above (AdamW with weight decay, lr 1e-2) does fill zeros without the mask."""
    cfg = sparse_config(tmp_path, plugins=[])
    del cfg["llmcompressor"]
    before = _base_weights(cfg)
    run_training(cfg)
    after = _targeted(load_file(str(Path(cfg["output_dir"]) / "model.safetensors")))
    assert any(not torch.equal(after[n] == 0, w == 0) for n, w in before.items())


def test_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    full = sparse_config(tmp_path, output_dir=str(tmp_path / "full"))
    run_training(full)
    part = sparse_config(tmp_path, output_dir=str(tmp_path / "part"), save_steps=3)
    run_training({**part, "max_steps": 3})
    run_training({**part, "resume_from_checkpoint": str(tmp_path / "part" / "checkpoint-3"), "overwrite_output_dir": True})
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6)
    base = _base_weights(full)
    for name, weight in base.items():
        assert torch.equal(b[name] == 0, weight == 0)


def test_start_later_than_the_run_leaves_weights_free(tmp_path: Path) -> None:
    """``start`` is an epoch: a modifier that starts after the run never masks."""
    from conftest import SEED_RECIPE

    recipe = {"finetuning_stage": {"finetuning_modifiers": {"ConstantPruningModifier": {
        **SEED_RECIPE["finetuning_stage"]["finetuning_modifiers"]["ConstantPruningModifier"], "start": 5}}}}
    cfg = sparse_config(tmp_path, llmcompressor={"recipe": recipe})
    before = _base_weights(cfg)
    run_training(cfg)
    after = _targeted(load_file(str(Path(cfg["output_dir"]) / "model.safetensors")))
    assert any(not torch.equal(after[n] == 0, w == 0) for n, w in before.items())
