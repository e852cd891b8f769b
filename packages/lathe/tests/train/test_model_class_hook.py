"""lathe_model_class: a plugin builds the base model with another head (a reward model's
sequence-classification head); full, LoRA and QLoRA keep that new head trainable and whole."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from lathe.errors import LatheError
from lathe.models.loading import load_model
from lathe.testing import tiny_tokenizer
from tests.train.conftest import make_plugins
from tests.train.test_quantized import needs_bnb


def _head_plugins(cls: type = AutoModelForSequenceClassification, labels: int = 1) -> Any:
    return make_plugins(lathe_model_class=lambda cfg: (cls, {"num_labels": labels}))


def _build(cfg_of: Any, plugins: Any, **overrides: Any) -> Any:
    return load_model(cfg_of(**overrides), tiny_tokenizer(), plugins)


def test_full_fine_tune_builds_the_named_class_with_its_labels(cfg_of: Any) -> None:
    model = _build(cfg_of, _head_plugins(AutoModelForTokenClassification, 3))
    assert type(model).__name__ == "LlamaForTokenClassification" and model.config.num_labels == 3
    assert model.score.weight.shape[0] == 3 and model.score.weight.requires_grad


LORA = {"adapter": "lora", "lora_r": 4, "lora_alpha": 8, "lora_target_linear": True}


@pytest.mark.parametrize("quantized", [False, pytest.param(True, marks=needs_bnb)])
@pytest.mark.parametrize("cls", [AutoModelForSequenceClassification, AutoModelForTokenClassification])
def test_lora_trains_the_new_head_whole(cfg_of: Any, quantized: bool, cls: type) -> None:
    overrides = {**LORA, "adapter": "qlora", "load_in_4bit": True} if quantized else LORA
    model = _build(cfg_of, _head_plugins(cls, 2), **overrides)
    head = model.base_model.model.score
    trainable = [n for n, p in model.named_parameters() if p.requires_grad and "lora_" not in n]
    assert trainable and all(n.startswith("base_model.model.score.modules_to_save.default.") for n in trainable)
    assert type(head.modules_to_save["default"]) is torch.nn.Linear  # not quantized, not LoRA-wrapped
    assert any("lora_A" in n for n, _ in model.named_parameters())


def test_model_type_beside_a_plugin_head_is_refused(cfg_of: Any) -> None:
    with pytest.raises(LatheError, match="model_type: AutoModelForCausalLM is set, but this run builds "
                                         "AutoModelForSequenceClassification"):
        _build(cfg_of, _head_plugins(), model_type="AutoModelForCausalLM")

