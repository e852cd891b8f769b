"""A tiny llama whose projection weights are pruned to 50% (unstructured or 2:4), as a base model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SEED_RECIPE: dict[str, Any] = {
    "finetuning_stage": {
        "finetuning_modifiers": {
            "ConstantPruningModifier": {"targets": [f"re:.*{p}.weight" for p in PROJ], "start": 0},
        }
    }
}


def prune(weight: Any, structure: str) -> None:
    """Zero the smaller half of ``weight`` in place: overall (unstructured) or 2 of every 4 inputs."""
    import torch

    with torch.no_grad():
        if structure == "2:4":
            groups = weight.view(-1, 4)
            drop = groups.abs().argsort(dim=1)[:, :2]
            groups.scatter_(1, drop, 0.0)
        else:
            threshold = weight.abs().flatten().kthvalue(weight.numel() // 2).values
            weight[weight.abs() <= threshold] = 0.0


def write_pruned_model(path: Path, structure: str) -> Path:
    from transformers import AutoModelForCausalLM

    from lathe.testing import write_tiny_model

    write_tiny_model(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    for name, param in model.named_parameters():
        if any(p in name for p in PROJ):
            prune(param.data, structure)
    model.save_pretrained(path, safe_serialization=True)
    return path


def sparse_config(tmp_path: Path, structure: str = "unstructured", **overrides: Any) -> dict[str, Any]:
    from lathe.testing import base_config

    model_dir = tmp_path / f"pruned-{structure.replace(':', '')}"
    if not (model_dir / "config.json").exists():
        write_pruned_model(model_dir, structure)
    cfg = base_config(
        tmp_path, base_model=str(model_dir), plugins=["llmcompressor"], llmcompressor={"recipe": SEED_RECIPE},
        weight_decay=0.1, learning_rate=1e-2, max_steps=6, dataset_processes=1,
    )
    cfg.update(overrides)
    return cfg


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
